DROP TABLE group_members;
DROP TABLE groups;
DROP TABLE user_emails;
DROP TABLE users;
DROP TABLE api_tokens;
DROP TABLE tenants;
