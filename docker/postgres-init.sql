-- One PostgreSQL, two databases: the servers share nothing but the public key set.
CREATE DATABASE auth;
CREATE DATABASE posts;
