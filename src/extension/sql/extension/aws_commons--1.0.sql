-- aws_commons 1.0 (pgsage): the types and constructors Amazon Aurora's aws_s3 functions take.

\echo Use "CREATE EXTENSION aws_commons" to load this file. \quit

CREATE SCHEMA aws_commons;
GRANT USAGE ON SCHEMA aws_commons TO PUBLIC;

-- Where an object lives: bucket, key ("file path") and the bucket's region.
CREATE TYPE aws_commons._s3_uri_1 AS (bucket text, file_path text, region text);

-- Credentials in Aurora's shape (Aurora's import functions take them; pgsage's
-- object store uses its own configuration, see docs/export.md).
CREATE TYPE aws_commons._aws_credentials_1 AS (access_key text, secret_key text, session_token text);

CREATE FUNCTION aws_commons.create_s3_uri(bucket text, file_path text, region text)
RETURNS aws_commons._s3_uri_1
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT ROW(bucket, file_path, region)::aws_commons._s3_uri_1 $$;

CREATE FUNCTION aws_commons.create_aws_credentials(access_key text, secret_key text, session_token text)
RETURNS aws_commons._aws_credentials_1
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT ROW(access_key, secret_key, session_token)::aws_commons._aws_credentials_1 $$;
