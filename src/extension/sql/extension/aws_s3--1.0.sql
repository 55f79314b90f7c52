-- aws_s3 1.0 (pgsage): Amazon Aurora's aws_s3.query_export_to_s3 with Aurora's signatures.
--
-- The export itself is carried out by the pgsage gateway: it finds the call in
-- the client's statement, runs COPY (query) TO STDOUT on the client's own
-- session (its privileges, its transaction, its temp tables), streams the
-- output to the object store, and gives the statement the call's result row.
-- The functions below are what PostgreSQL sees. Called where the gateway
-- cannot carry out the export (a client connected straight to PostgreSQL, a
-- call inside a function, view, DO block or SQL PREPAREd statement, or one
-- pipelined with other statements), they fail with SQLSTATE 0A000. See
-- docs/export.md.

\echo Use "CREATE EXTENSION aws_s3 CASCADE" to load this file. \quit

CREATE SCHEMA aws_s3;
GRANT USAGE ON SCHEMA aws_s3 TO PUBLIC;

CREATE FUNCTION aws_s3.gateway_required() RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  RAISE EXCEPTION 'aws_s3.query_export_to_s3 runs through the pgsage gateway'
    USING ERRCODE = '0A000',
          DETAIL = 'PostgreSQL cannot write to the object store itself: the pgsage gateway carries out the export '
                   'for statements it receives from a client. This call came from a session connected straight to '
                   'PostgreSQL, from inside a function, view, DO block or SQL PREPAREd statement, or in a pipeline '
                   'of several statements.',
          HINT = 'Connect through the pgsage gateway and call it from a statement of its own, e.g. '
                 'SELECT * FROM aws_s3.query_export_to_s3(''SELECT …'', aws_commons.create_s3_uri(…)).';
END
$$;

CREATE FUNCTION aws_s3.query_export_to_s3(
  query text,
  s3_info aws_commons._s3_uri_1,
  options text DEFAULT NULL,
  kms_key text DEFAULT NULL,
  OUT rows_uploaded bigint,
  OUT files_uploaded bigint,
  OUT bytes_uploaded bigint)
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  PERFORM aws_s3.gateway_required();
END
$$;

CREATE FUNCTION aws_s3.query_export_to_s3(
  query text,
  bucket text,
  file_path text,
  region text DEFAULT NULL,
  options text DEFAULT NULL,
  kms_key text DEFAULT NULL,
  OUT rows_uploaded bigint,
  OUT files_uploaded bigint,
  OUT bytes_uploaded bigint)
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  PERFORM aws_s3.gateway_required();
END
$$;

-- For the gateway: the same two signatures, so that PostgreSQL itself picks
-- the form, applies defaults, named arguments and casts, and evaluates the
-- argument expressions on the client's session. The caller must be allowed to
-- execute the query_export_to_s3 it called.
CREATE FUNCTION aws_s3._export_arguments(
  query text,
  s3_info aws_commons._s3_uri_1,
  options text DEFAULT NULL,
  kms_key text DEFAULT NULL,
  OUT export_query text,
  OUT export_bucket text,
  OUT export_file_path text,
  OUT export_region text,
  OUT export_options text,
  OUT export_kms_key text)
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  IF NOT has_function_privilege('aws_s3.query_export_to_s3(text, aws_commons._s3_uri_1, text, text)', 'EXECUTE') THEN
    RAISE EXCEPTION 'permission denied for function query_export_to_s3' USING ERRCODE = '42501';
  END IF;
  export_query := query;
  export_bucket := (s3_info).bucket;
  export_file_path := (s3_info).file_path;
  export_region := (s3_info).region;
  export_options := options;
  export_kms_key := kms_key;
END
$$;

CREATE FUNCTION aws_s3._export_arguments(
  query text,
  bucket text,
  file_path text,
  region text DEFAULT NULL,
  options text DEFAULT NULL,
  kms_key text DEFAULT NULL,
  OUT export_query text,
  OUT export_bucket text,
  OUT export_file_path text,
  OUT export_region text,
  OUT export_options text,
  OUT export_kms_key text)
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  IF NOT has_function_privilege('aws_s3.query_export_to_s3(text, text, text, text, text, text)', 'EXECUTE') THEN
    RAISE EXCEPTION 'permission denied for function query_export_to_s3' USING ERRCODE = '42501';
  END IF;
  export_query := query;
  export_bucket := bucket;
  export_file_path := file_path;
  export_region := region;
  export_options := options;
  export_kms_key := kms_key;
END
$$;

-- For the gateway: what it puts in the statement in place of a call it carried
-- out, with the same result type as query_export_to_s3.
CREATE FUNCTION aws_s3._export_result(
  INOUT rows_uploaded bigint,
  INOUT files_uploaded bigint,
  INOUT bytes_uploaded bigint)
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT rows_uploaded, files_uploaded, bytes_uploaded $$;

-- Like Aurora: nobody may export until granted EXECUTE on query_export_to_s3.
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA aws_s3 FROM PUBLIC;
GRANT EXECUTE ON FUNCTION aws_s3.gateway_required() TO PUBLIC;
GRANT EXECUTE ON FUNCTION aws_s3._export_arguments(text, aws_commons._s3_uri_1, text, text) TO PUBLIC;
GRANT EXECUTE ON FUNCTION aws_s3._export_arguments(text, text, text, text, text, text) TO PUBLIC;
GRANT EXECUTE ON FUNCTION aws_s3._export_result(bigint, bigint, bigint) TO PUBLIC;
