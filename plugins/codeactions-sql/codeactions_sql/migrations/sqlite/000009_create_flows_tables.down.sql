DROP TABLE IF EXISTS flow_executions;
DROP TABLE IF EXISTS flow_versions;
DROP TABLE IF EXISTS flow_definitions;
