DROP TABLE IF EXISTS user_permissions;
