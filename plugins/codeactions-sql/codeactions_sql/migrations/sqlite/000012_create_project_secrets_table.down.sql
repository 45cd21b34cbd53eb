DROP TABLE IF EXISTS project_secrets;
