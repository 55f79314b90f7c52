-- aws_ml 1.3 -> 1.4 (pgsage), for ALTER EXTENSION aws_ml UPDATE. Made from aws_ml--1.4.sql by
-- src/extension/upgrade-script.ts (npm run extension:upgrade): edit that script, not this one.

\echo Use "ALTER EXTENSION aws_ml UPDATE" to load this file. \quit

-- What the extension has before the update: 1.4's privileges go only to what it makes.
SELECT pg_catalog.set_config('aws_ml.members_before', COALESCE((SELECT pg_catalog.string_agg(d.objid::text, ',')
  FROM pg_catalog.pg_depend d JOIN pg_catalog.pg_extension e ON e.oid = d.refobjid
 WHERE e.extname = 'aws_ml' AND d.deptype = 'e'), ''), true);

-- The service schemas belong to the extension's owner, no longer to aws_ml, whose members could add
-- functions there that other roles' calls would resolve to. (Functions a member added stay: see docs/operations.md.)
DO $owners$
DECLARE
  owner text := (SELECT r.rolname FROM pg_catalog.pg_extension e JOIN pg_catalog.pg_roles r ON r.oid = e.extowner
                  WHERE e.extname = 'aws_ml');
BEGIN
  EXECUTE pg_catalog.format('ALTER SCHEMA aws_comprehend OWNER TO %I', owner);
  EXECUTE pg_catalog.format('ALTER SCHEMA aws_sagemaker OWNER TO %I', owner);
END
$owners$;

CREATE OR REPLACE FUNCTION aws_ml.bridge_conninfo() RETURNS text
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  conninfo text;
BEGIN
  SELECT s.conninfo INTO conninfo FROM aws_ml.bridge_settings s LIMIT 1;
  IF conninfo IS NULL THEN
    conninfo := pg_read_file('pgsage_bridge.conninfo', 0, 4096, true);
  END IF;
  IF conninfo IS NULL OR btrim(conninfo) = '' THEN
    RAISE EXCEPTION 'the pgsage bridge is not configured for this server'
      USING ERRCODE = '08001',
            HINT = 'Start pgsage (pgsage up) so that it can tell PostgreSQL where its bridge listens.';
  END IF;
  RETURN btrim(conninfo);
END
$$;

-- One request to the gateway's bridge. The request and response are JSON; the
-- bridge reports failures inside the response so that the SQLSTATE survives.
--
-- The ML functions and this one are PARALLEL UNSAFE (Aurora's C functions are
-- safe): a VOLATILE PL/pgSQL function starts a new command for each statement
-- and each expression that calls a non-immutable function, which PostgreSQL
-- forbids during a parallel query that writes (CREATE TABLE AS, CREATE or
-- REFRESH MATERIALIZED VIEW), and parallel workers could not read the batch
-- results anyway. Batch mode gives the parallelism instead: several batches in flight.
-- (dblink reports a kept connection the gateway's restart broke as a NOTICE, before the call
-- reconnects: client_min_messages keeps it from the client.)
-- One query on the bridge's connection: sent, then awaited, so that a cancel or statement_timeout stops the call
-- at the bridge too (dblink alone would wait for the service's answer before letting the statement fail).
-- NULL when the connection is broken.
CREATE OR REPLACE FUNCTION aws_ml.bridge_exchange(query text, last_try boolean) RETURNS text
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  response text;
BEGIN
  IF @extschema:dblink@.dblink_send_query('aws_ml_bridge', query) <> 1 THEN
    RETURN NULL;
  END IF;
  BEGIN
    SELECT r INTO response FROM @extschema:dblink@.dblink_get_result('aws_ml_bridge', last_try) AS t(r text);
  EXCEPTION WHEN query_canceled THEN
    PERFORM @extschema:dblink@.dblink_cancel_query('aws_ml_bridge');
    PERFORM FROM @extschema:dblink@.dblink_get_result('aws_ml_bridge', false) AS t(r text);
    PERFORM FROM @extschema:dblink@.dblink_get_result('aws_ml_bridge', false) AS t(r text);
    RAISE;
  END;
  -- (An asynchronous query is over once its results are read to the end.)
  PERFORM FROM @extschema:dblink@.dblink_get_result('aws_ml_bridge', false) AS t(r text);
  RETURN response;
END
$$;

CREATE OR REPLACE FUNCTION aws_ml.bridge_call(request text) RETURNS json
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
SET client_min_messages = warning
AS $$
DECLARE
  -- dblink's functions are not PUBLIC's (this script revokes them), but a role granted them could name a
  -- connection aws_ml_bridge itself, leading these functions to a bridge of its own, or send requests over the
  -- one a SECURITY DEFINER function of another role opened. So each request carries a nonce and a MAC under
  -- the bridge's secret, which the bridge checks on connections with this application_name, and the answer a
  -- MAC of the nonce and itself, checked here. Both bodies go as base64 of their UTF-8: dblink sends text in
  -- the database's encoding, which the bridge does not convert.
  conninfo text := aws_ml.bridge_conninfo() || ' application_name=aws_ml_signed';
  secret text := substring(conninfo FROM 'password=([^ ]+)');
  nonce text := gen_random_uuid()::text;
  encoded text := encode(convert_to(request, 'UTF8'), 'base64');
  envelope text;
  response text;
  signed json;
  body text;
  reply json;
  code text;
  message text;
  detail text;
  hint text;
BEGIN
  envelope := json_build_object('nonce', nonce, 'body', encoded, 'mac',
    encode(sha256(convert_to(secret || ':request:' || nonce || ':' || encoded, 'UTF8')), 'hex'))::text;
  IF NOT ('aws_ml_bridge' = ANY (COALESCE(@extschema:dblink@.dblink_get_connections(), '{}'::text[]))) THEN
    PERFORM @extschema:dblink@.dblink_connect('aws_ml_bridge', conninfo);
  END IF;
  FOR attempt IN 1..2 LOOP
    IF attempt = 2 THEN
      -- A kept connection breaks when the gateway restarts, and one made elsewhere may lead elsewhere:
      -- reconnect once.
      PERFORM @extschema:dblink@.dblink_disconnect('aws_ml_bridge');
      PERFORM @extschema:dblink@.dblink_connect('aws_ml_bridge', conninfo);
    END IF;
    body := NULL;
    response := aws_ml.bridge_exchange(envelope, attempt = 2);
    -- (Not pg_input_is_valid: PostgreSQL 14 and 15 have none.)
    BEGIN
      signed := response::json;
    EXCEPTION WHEN invalid_text_representation THEN
      signed := NULL;
    END;
    IF signed->>'mac' = encode(sha256(convert_to(secret || ':reply:' || nonce || ':' || (signed->>'body'), 'UTF8')),
                               'hex') THEN
      body := convert_from(decode(signed->>'body', 'base64'), 'UTF8');
    END IF;
    EXIT WHEN body IS NOT NULL;
    IF attempt = 2 AND response IS NULL THEN
      RAISE EXCEPTION 'could not reach the pgsage bridge' USING ERRCODE = '08006';
    ELSIF attempt = 2 THEN
      RAISE EXCEPTION 'the answer did not come from the pgsage bridge' USING ERRCODE = '08P01',
        HINT = 'A dblink connection named aws_ml_bridge leads elsewhere, or the bridge is of another pgsage.';
    END IF;
  END LOOP;
  reply := body::json;
  IF reply->'error' IS NOT NULL THEN
    code := COALESCE(reply->'error'->>'code', 'XX000');
    message := COALESCE(reply->'error'->>'message', 'ML service call failed');
    detail := reply->'error'->>'detail';
    hint := reply->'error'->>'hint';
    -- RAISE refuses NULL options, hence the four forms.
    IF detail IS NULL AND hint IS NULL THEN
      RAISE EXCEPTION USING ERRCODE = code, MESSAGE = message;
    ELSIF hint IS NULL THEN
      RAISE EXCEPTION USING ERRCODE = code, MESSAGE = message, DETAIL = detail;
    ELSIF detail IS NULL THEN
      RAISE EXCEPTION USING ERRCODE = code, MESSAGE = message, HINT = hint;
    ELSE
      RAISE EXCEPTION USING ERRCODE = code, MESSAGE = message, DETAIL = detail, HINT = hint;
    END IF;
  END IF;
  RETURN reply;
END
$$;

-- Batch results live in a temp table of the session that the functions below
-- read. It is created by this SECURITY DEFINER function so that its owner is
-- the extension owner: the session's user may add rows (the gateway loads them
-- with COPY as that user) but can neither replace it with a view nor attach
-- code to it, which matters because the functions reading it run as definer.
-- The table lives as long as the session; each batch-mode statement gets a
-- number (aws_ml.batch_statement) and only reads its own rows. `fresh` empties
-- the table, which the gateway asks for when no transaction is open.
CREATE OR REPLACE FUNCTION aws_ml.begin_batch(statement_number int, fresh boolean) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  existing oid := to_regclass('pg_temp.aws_ml_results');
BEGIN
  -- A relation of that name the session made itself is the user's: it is neither read nor dropped,
  -- and the gateway answers the session's statements per row. (Its columns tell it apart from this
  -- one when the session's user is the extension's owner.)
  IF existing IS NOT NULL
     AND NOT EXISTS (SELECT FROM pg_class c WHERE c.oid = existing AND c.relowner = current_user::regrole
                        AND c.relkind = 'r'
                        AND ARRAY(SELECT a.attname::text FROM pg_attribute a
                                   WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
                                   ORDER BY a.attnum) = ARRAY['stmt', 'kind', 'target', 'key', 'out_text', 'out_real']) THEN
    RAISE EXCEPTION 'pg_temp.aws_ml_results is not the results table of aws_ml' USING ERRCODE = '42P07';
  END IF;
  IF existing IS NULL THEN
    CREATE TEMP TABLE aws_ml_results (
      stmt int NOT NULL,       -- the batch-mode statement the row belongs to
      kind text NOT NULL,      -- 'sentiment' or 'endpoint'
      target text NOT NULL,    -- language code or endpoint name
      key text NOT NULL,       -- the input text, or the JSON array of model inputs
      out_text text,
      out_real real
    );
    GRANT SELECT, INSERT ON pg_temp.aws_ml_results TO PUBLIC;
    -- analyze_batch needs only how the statement's rows are spread: a small sample is enough.
    ALTER TABLE pg_temp.aws_ml_results ALTER COLUMN stmt SET STATISTICS 10, ALTER COLUMN kind SET STATISTICS 10,
      ALTER COLUMN target SET STATISTICS 10;
    existing := to_regclass('pg_temp.aws_ml_results');
  ELSIF fresh THEN
    TRUNCATE pg_temp.aws_ml_results;
    -- Loading is several times faster without an index to maintain; index_batch adds it back when needed.
    -- (Only when there is one: DROP INDEX is DDL that event triggers see. One that refuses it keeps the index.)
    IF to_regclass('pg_temp.aws_ml_results_key') IS NOT NULL THEN
      BEGIN
        DROP INDEX pg_temp.aws_ml_results_key;
      EXCEPTION WHEN OTHERS THEN
        NULL;
      END;
    END IF;
  END IF;
  -- Which loads of answers the gateway vouched for (see trust_batch): made beside the results table, with no
  -- privilege for anyone else. One of that name the session made itself fails the CREATE, and the gateway
  -- answers per row.
  IF to_regclass('pg_temp.aws_ml_trusted') IS NULL THEN
    CREATE TEMP TABLE aws_ml_trusted (stmt int NOT NULL, vouched boolean NOT NULL);
  ELSIF EXISTS (SELECT FROM pg_class c WHERE c.oid = to_regclass('pg_temp.aws_ml_trusted') AND c.relkind = 'r'
                   AND c.relowner = current_user::regrole) THEN
    DELETE FROM pg_temp.aws_ml_trusted t WHERE t.stmt <> statement_number OR fresh;
  ELSE
    -- (Not touched: a trigger of the session's own on it would run with this function's rights.)
    RAISE EXCEPTION 'pg_temp.aws_ml_trusted is not the table of aws_ml' USING ERRCODE = '42P07';
  END IF;
  PERFORM set_config('aws_ml.batch_results', pg_backend_pid()::text || ':' || existing::oid::text, false);
  PERFORM set_config('aws_ml.batch_statement', statement_number::text, false);
END
$$;

-- The transaction ID of the (sub)transaction a load of answers runs in (see trust_batch), given one first.
CREATE OR REPLACE FUNCTION aws_ml.load_xid() RETURNS text
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  xid text;
BEGIN
  IF NOT EXISTS (SELECT FROM pg_class c WHERE c.oid = to_regclass('pg_temp.aws_ml_trusted') AND c.relkind = 'r'
                    AND c.relowner = current_user::regrole) THEN
    RETURN NULL;
  END IF;
  -- (The row only gives the transaction its ID: it vouches for nothing.)
  INSERT INTO pg_temp.aws_ml_trusted (stmt, vouched) VALUES (0, false) RETURNING xmin::text INTO xid;
  RETURN xid;
END
$$;

-- The gateway vouches for the answers it has just loaded for a statement, in the (sub)transaction load_xid
-- named, in which nothing but its own load ran: the functions below read only rows loaded in a transaction
-- vouched for (the row's xmin is the vouching row's). A session may insert rows of its own into the results
-- table and point the settings at them, but cannot vouch: the proof is a hash of the bridge's secret, which
-- only the gateway and this function's owner can read, with the statement number and that transaction's ID,
-- so a proof seen in pg_stat_activity or a log vouches for that transaction only (rolled back with a failed
-- load). False when refused (the answers are then read only by the gateway's own statement, and the functions
-- call the service).
CREATE OR REPLACE FUNCTION aws_ml.trust_batch(statement_number int, proof text) RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  secret text := substring(aws_ml.bridge_conninfo() FROM 'password=([^ ]+)');
  xid text;
BEGIN
  IF secret IS NULL OR NOT EXISTS (SELECT FROM pg_class c WHERE c.oid = to_regclass('pg_temp.aws_ml_trusted')
                                      AND c.relkind = 'r' AND c.relowner = current_user::regrole) THEN
    RETURN false;
  END IF;
  INSERT INTO pg_temp.aws_ml_trusted (stmt, vouched) VALUES (statement_number, true) RETURNING xmin::text INTO xid;
  IF proof IS DISTINCT FROM encode(sha256(convert_to(secret || ':vouch:' || statement_number::text || ':' || xid,
                                                     'UTF8')), 'hex') THEN
    DELETE FROM pg_temp.aws_ml_trusted t WHERE t.vouched AND t.stmt = statement_number AND t.xmin::text = xid;
    RETURN false;
  END IF;
  RETURN true;
END
$$;

-- The index the functions' per-row lookups use, built once the results are loaded
-- (a join does not need it). Only the extension owner may create it.
CREATE OR REPLACE FUNCTION aws_ml.index_batch() RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  IF aws_ml.batch_results_available() AND to_regclass('pg_temp.aws_ml_results_key') IS NULL THEN
    CREATE INDEX aws_ml_results_key ON pg_temp.aws_ml_results USING hash (key);
  END IF;
EXCEPTION WHEN OTHERS THEN
  -- An open cursor of this transaction still reads the table, or an event trigger refuses DDL:
  -- lookups go without the index.
  NULL;
END
$$;

-- Statistics for the results just loaded: without them PostgreSQL takes the statement's few matching rows
-- for one and may join a million rows against them in a nested loop. Only the extension owner may.
CREATE OR REPLACE FUNCTION aws_ml.analyze_batch() RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  IF aws_ml.batch_results_available() THEN
    ANALYZE pg_temp.aws_ml_results (stmt, kind, target);
  END IF;
END
$$;

-- A view's definition with every name outside pg_catalog schema-qualified (printed with no other schema on
-- the search_path): the gateway may inline it into a statement of any session, whatever its search_path.
CREATE OR REPLACE FUNCTION aws_ml.view_definition(view_oid oid) RETURNS text
LANGUAGE sql STABLE SET search_path = pg_catalog
AS $$ SELECT pg_catalog.pg_get_viewdef(view_oid) $$;

-- Runs one of the gateway's catalog queries (which wrappers, views and writers the database has) with
-- pg_catalog alone on the search_path. What it reads is shared by every session of the database, while the
-- session reading it may be any of them: a function or operator of its own must not take part. With the
-- caller's rights: it reads nothing the caller could not read with a query of their own.
CREATE OR REPLACE FUNCTION aws_ml.catalog_rows(query text) RETURNS SETOF record
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  RETURN QUERY EXECUTE query;
END
$$;

-- Whether the running statement has batch results to read: the gateway set
-- them up in this very backend (parallel workers cannot read temp tables and
-- take the per-row path), and the table is the one begin_batch created. Its
-- owner is checked because a user can set the setting and plant a look-alike
-- view, which these SECURITY DEFINER callers must never read.
-- No SET clause (each call would save and restore search_path; it runs once per row of a view read):
-- every name is schema-qualified, and its callers run with search_path = pg_catalog, pg_temp.
CREATE OR REPLACE FUNCTION aws_ml.batch_results_available() RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
  SELECT COALESCE((
    SELECT pg_catalog.current_setting('aws_ml.batch_results', true)
           OPERATOR(pg_catalog.=) (pg_catalog.pg_backend_pid()::pg_catalog.text OPERATOR(pg_catalog.||) ':'
                                   OPERATOR(pg_catalog.||) c.oid::pg_catalog.text)
      FROM pg_catalog.pg_class c
     WHERE c.oid OPERATOR(pg_catalog.=) pg_catalog.to_regclass('pg_temp.aws_ml_results')
       AND c.relkind OPERATOR(pg_catalog.=) 'r'
       AND c.relowner OPERATOR(pg_catalog.=) current_user::pg_catalog.regrole
       AND EXISTS (SELECT FROM pg_catalog.pg_class t
                    WHERE t.oid OPERATOR(pg_catalog.=) pg_catalog.to_regclass('pg_temp.aws_ml_trusted')
                      AND t.relkind OPERATOR(pg_catalog.=) 'r'
                      AND t.relowner OPERATOR(pg_catalog.=) current_user::pg_catalog.regrole)
  ), false)
  WHERE COALESCE(pg_catalog.current_setting('aws_ml.batch_results', true), '') OPERATOR(pg_catalog.<>) ''
$$;

CREATE OR REPLACE FUNCTION aws_comprehend.detect_sentiment(
  input_text varchar,
  language_code varchar,
  max_rows_per_batch int DEFAULT NULL,
  OUT sentiment varchar,
  OUT confidence real)
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
COST 5000
AS $$
DECLARE
  reply json;
  call_stack text COLLATE "C"; -- (not the arguments' collation, which a local variable would take: a nondeterministic one has no regex)
  own_call boolean;
BEGIN
  IF input_text IS NULL OR btrim(input_text) = '' THEN
    RETURN;
  END IF;
  IF language_code IS NULL THEN
    RAISE EXCEPTION 'language_code must not be NULL' USING ERRCODE = '22004';
  END IF;
  -- max_rows_per_batch as both ML functions accept it: NULL (automatic) or a positive row count.
  -- (Checked here, not by a helper: PERFORM would run a query per row.)
  IF max_rows_per_batch IS NOT NULL AND max_rows_per_batch < 1 THEN
    RAISE EXCEPTION 'max_rows_per_batch must be NULL or at least 1, not %', max_rows_per_batch USING ERRCODE = '22023';
  END IF;
  -- Stored answers (only those the gateway vouched for: see trust_batch) are read for calls of the statement
  -- itself: in its text, a view it reads, a SQL function (a wrapper). A call in PL/pgSQL (a function, a
  -- trigger, DO) goes to the service: the gateway does not see such calls, and may keep a statement's answers
  -- current after it (a cursor's, for its block), which a model deployed since would answer otherwise.
  -- The stack's first line is this function's own; the portal's parameters that PostgreSQL adds last when
  -- log_parameter_max_length_on_error is set are the statement's, as is Aurora's three-argument form below,
  -- which calls this one. (In another language than English the lines read otherwise: calls go per row.)
  IF aws_ml.batch_results_available() THEN
    GET DIAGNOSTICS call_stack = PG_CONTEXT;
    IF strpos(call_stack, E'\n') > 0 THEN
      call_stack := regexp_replace(call_stack, E'\n(unnamed portal|portal "[^\n]*") with parameters: .*$', '');
    END IF;
    own_call := call_stack !~ E'\n(?!SQL function "|PL/pgSQL function aws_comprehend\\.detect_sentiment\\(character varying,character varying,character varying,integer\\) )';
  END IF;
  IF own_call THEN
    -- (Compared in the database's default collation, which is deterministic: the arguments bring the
    -- caller's, and a case- or accent-insensitive one would match another input's answer.)
    SELECT r.out_text, r.out_real INTO sentiment, confidence
      FROM pg_temp.aws_ml_results r
     WHERE r.key = input_text COLLATE "default" AND r.kind = 'sentiment' AND r.target = language_code COLLATE "default"
       AND r.stmt = current_setting('aws_ml.batch_statement')::int
       AND EXISTS (SELECT FROM pg_temp.aws_ml_trusted t WHERE t.vouched AND t.stmt = r.stmt AND t.xmin = r.xmin)
     LIMIT 1;
    IF FOUND THEN
      RETURN;
    END IF;
  END IF;
  reply := aws_ml.bridge_call(json_build_object(
    'op', 'comprehend.detect_sentiment', 'text', input_text, 'language', language_code)::text);
  sentiment := reply->>'sentiment';
  confidence := (reply->>'confidence')::real;
END
$$;

-- The three-argument form Aurora's documentation shows: detect_sentiment(null, 'I like it!', 'en').
-- PostgreSQL also resolves detect_sentiment(doc, 'en', NULL) here (an untyped NULL prefers text):
-- without a language that is Aurora's (input_text, language_code, NULL).
CREATE OR REPLACE FUNCTION aws_comprehend.detect_sentiment(
  unused varchar,
  input_text varchar,
  language_code varchar,
  max_rows_per_batch int DEFAULT NULL,
  OUT sentiment varchar,
  OUT confidence real)
-- (PL/pgSQL, not SQL: the call stack then names it with its schema and argument types, which the function
-- it calls checks before it reads stored answers.)
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
COST 5000
AS $$
DECLARE
  answer record;
BEGIN
  IF language_code IS NULL THEN
    answer := aws_comprehend.detect_sentiment(unused, input_text, max_rows_per_batch);
  ELSE
    answer := aws_comprehend.detect_sentiment(input_text, language_code, max_rows_per_batch);
  END IF;
  sentiment := answer.sentiment;
  confidence := answer.confidence;
END
$$;

-- Aurora declares invoke_endpoint(endpoint_name, max_rows_per_batch, VARIADIC model_input "any").
-- "any" cannot be declared outside C, so the pgsage gateway packs the model inputs with
-- json_build_array(...) at every call site; a client connected straight to PostgreSQL writes
-- aws_sagemaker.invoke_endpoint('endpoint', NULL, json_build_array(arg1, arg2, ...)).
CREATE OR REPLACE FUNCTION aws_sagemaker.invoke_endpoint(
  endpoint_name varchar,
  max_rows_per_batch int,
  model_input json,
  OUT model_output varchar)
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
COST 5000
AS $$
DECLARE
  reply json;
  call_stack text COLLATE "C"; -- (not the arguments' collation, which a local variable would take: a nondeterministic one has no regex)
  own_call boolean;
BEGIN
  IF endpoint_name IS NULL THEN
    RAISE EXCEPTION 'endpoint_name must not be NULL' USING ERRCODE = '22004';
  END IF;
  -- max_rows_per_batch as both ML functions accept it: NULL (automatic) or a positive row count.
  -- (Checked here, not by a helper: PERFORM would run a query per row.)
  IF max_rows_per_batch IS NOT NULL AND max_rows_per_batch < 1 THEN
    RAISE EXCEPTION 'max_rows_per_batch must be NULL or at least 1, not %', max_rows_per_batch USING ERRCODE = '22023';
  END IF;
  IF model_input IS NULL THEN
    RETURN; -- no inputs at all (json_build_array always gives an array): nothing to send, as in batch mode
  END IF;
  -- (Stored answers only for calls of the statement itself: see detect_sentiment.)
  IF aws_ml.batch_results_available() THEN
    GET DIAGNOSTICS call_stack = PG_CONTEXT;
    IF strpos(call_stack, E'\n') > 0 THEN
      call_stack := regexp_replace(call_stack, E'\n(unnamed portal|portal "[^\n]*") with parameters: .*$', '');
    END IF;
    own_call := call_stack !~ E'\n(?!SQL function ")';
  END IF;
  IF own_call THEN
    SELECT r.out_text INTO model_output
      FROM pg_temp.aws_ml_results r
     WHERE r.key = model_input::text AND r.kind = 'endpoint' AND r.target = endpoint_name COLLATE "default"
       AND r.stmt = current_setting('aws_ml.batch_statement')::int
       AND EXISTS (SELECT FROM pg_temp.aws_ml_trusted t WHERE t.vouched AND t.stmt = r.stmt AND t.xmin = r.xmin)
     LIMIT 1;
    IF FOUND THEN
      RETURN;
    END IF;
  END IF;
  reply := aws_ml.bridge_call(json_build_object(
    'op', 'sagemaker.invoke_endpoint', 'endpoint', endpoint_name, 'input', model_input::text)::text);
  model_output := reply->>'output';
END
$$;

-- Casts an endpoint's text answer to the caller's type. A multi-value CSV
-- answer such as `0.12,0.98` becomes a composite value only with parentheses
-- around it, which this adds for composite types; the gateway routes
-- `invoke_endpoint(...)::some_type` casts here when some_type is not a builtin scalar.
CREATE OR REPLACE FUNCTION aws_sagemaker.cast_output(model_output varchar, target anyelement) RETURNS anyelement
LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  result ALIAS FOR $0;
  composite boolean;
BEGIN
  IF model_output IS NULL THEN
    RETURN NULL;
  END IF;
  SELECT t.typtype = 'c' INTO composite FROM pg_type t WHERE t.oid = pg_typeof(target);
  IF composite THEN
    EXECUTE format('SELECT (%L::%s).*', '(' || model_output || ')', pg_typeof(target)) INTO result;
  ELSE
    EXECUTE format('SELECT %L::%s', model_output, pg_typeof(target)) INTO result;
  END IF;
  RETURN result;
END
$$;

-- Batch-mode figures the gateway keeps per ML function since it started
-- (also on the service edge at /metrics for Prometheus).
CREATE OR REPLACE FUNCTION aws_ml.gateway_statistics(
  OUT function_name text,
  OUT statements bigint,
  OUT batches bigint,
  OUT rows_scored bigint,
  OUT batch_call_time_ms double precision,
  OUT retries bigint,
  OUT errors bigint,
  OUT per_row_calls bigint)
RETURNS SETOF record
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  RETURN QUERY
    SELECT f->>'function', (f->>'statements')::bigint, (f->>'batches')::bigint, (f->>'rows')::bigint,
           (f->>'callTimeMs')::double precision, (f->>'retries')::bigint, (f->>'errors')::bigint,
           (f->>'perRowCalls')::bigint
      FROM json_array_elements(aws_ml.bridge_call('{"op":"statistics"}')->'functions') AS f;
END
$$;
CREATE OR REPLACE VIEW aws_ml.batch_statistics AS SELECT * FROM aws_ml.gateway_statistics();

-- Tells gateways listening on channel aws_ml_ddl that functions or views may have changed,
-- so they re-read which user functions wrap ML calls (and which functions, operators and casts may write).
CREATE OR REPLACE FUNCTION aws_ml.notify_ddl() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  PERFORM pg_notify('aws_ml_ddl', current_database());
END
$$;
DROP EVENT TRIGGER IF EXISTS aws_ml_ddl_watch;
CREATE EVENT TRIGGER aws_ml_ddl_watch ON ddl_command_end
  WHEN TAG IN ('CREATE FUNCTION', 'ALTER FUNCTION', 'DROP FUNCTION', 'CREATE PROCEDURE', 'ALTER PROCEDURE',
               'DROP PROCEDURE', 'CREATE VIEW', 'ALTER VIEW', 'DROP VIEW', 'CREATE MATERIALIZED VIEW',
               'ALTER MATERIALIZED VIEW', 'DROP MATERIALIZED VIEW', 'CREATE RULE', 'DROP RULE',
               'ALTER SCHEMA', 'DROP SCHEMA', 'ALTER EXTENSION', 'DROP EXTENSION', 'CREATE EXTENSION',
               'CREATE OPERATOR', 'ALTER OPERATOR', 'DROP OPERATOR', 'CREATE CAST', 'DROP CAST',
               'CREATE DOMAIN', 'ALTER DOMAIN', 'DROP DOMAIN', 'CREATE POLICY', 'ALTER POLICY', 'DROP POLICY')
  EXECUTE FUNCTION aws_ml.notify_ddl();

-- dblink's functions are not PUBLIC's: a role that may use dblink can open a connection named aws_ml_bridge of its
-- own, or send requests over the one these functions opened, whose requests it would then read (see bridge_call:
-- it could not forge their answers). Grant them to the roles that need dblink.
DO $dblink$
DECLARE
  f regprocedure;
BEGIN
  FOR f IN SELECT d.objid::regprocedure FROM pg_catalog.pg_depend d
             JOIN pg_catalog.pg_extension e ON e.oid = d.refobjid
            WHERE e.extname = 'dblink' AND d.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass AND d.deptype = 'e' LOOP
    EXECUTE pg_catalog.format('REVOKE EXECUTE ON FUNCTION %s FROM PUBLIC', f);
  END LOOP;
END
$dblink$;

-- Privileges as 1.4 gives them, on what this update made; an administrator's on the rest stay.
DO $upgrade$
DECLARE
  before oid[] := pg_catalog.string_to_array(pg_catalog.current_setting('aws_ml.members_before'), ',')::oid[];
  made oid[] := ARRAY(SELECT d.objid FROM pg_catalog.pg_depend d JOIN pg_catalog.pg_extension e ON e.oid = d.refobjid
                       WHERE e.extname = 'aws_ml' AND d.deptype = 'e' AND d.classid = 'pg_catalog.pg_proc'::regclass
                         AND d.objid <> ALL (before));
  view_made boolean := 'aws_ml.batch_statistics'::regclass::oid <> ALL (before);
  f oid;
BEGIN
  FOREACH f IN ARRAY made LOOP
    -- (As a fresh install leaves them, whatever default privileges gave them.)
    EXECUTE format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', f::regprocedure);
    IF (SELECT p.pronamespace::regnamespace::text FROM pg_catalog.pg_proc p WHERE p.oid = f)
       IN ('aws_comprehend', 'aws_sagemaker') THEN
      EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO aws_ml', f::regprocedure);
    END IF;
  END LOOP;
  IF to_regprocedure('aws_ml.bridge_call(text)')::oid = ANY (made) THEN REVOKE ALL ON FUNCTION aws_ml.bridge_call(text) FROM PUBLIC; END IF;
  IF to_regprocedure('aws_ml.bridge_conninfo()')::oid = ANY (made) THEN REVOKE ALL ON FUNCTION aws_ml.bridge_conninfo() FROM PUBLIC; END IF;
  IF view_made THEN REVOKE ALL ON aws_ml.batch_statistics FROM PUBLIC; END IF;
  IF view_made THEN GRANT SELECT ON aws_ml.batch_statistics TO aws_ml; END IF;
  IF to_regprocedure('aws_ml.gateway_statistics()')::oid = ANY (made) THEN GRANT EXECUTE ON FUNCTION aws_ml.gateway_statistics() TO aws_ml; END IF;
  IF to_regprocedure('aws_sagemaker.cast_output(varchar, anyelement)')::oid = ANY (made) THEN GRANT EXECUTE ON FUNCTION aws_sagemaker.cast_output(varchar, anyelement) TO PUBLIC; END IF;
  IF to_regprocedure('aws_ml.begin_batch(int, boolean)')::oid = ANY (made) THEN GRANT EXECUTE ON FUNCTION aws_ml.begin_batch(int, boolean) TO PUBLIC; END IF;
  IF to_regprocedure('aws_ml.load_xid()')::oid = ANY (made) THEN GRANT EXECUTE ON FUNCTION aws_ml.load_xid() TO PUBLIC; END IF;
  IF to_regprocedure('aws_ml.trust_batch(int, text)')::oid = ANY (made) THEN GRANT EXECUTE ON FUNCTION aws_ml.trust_batch(int, text) TO PUBLIC; END IF;
  IF to_regprocedure('aws_ml.index_batch()')::oid = ANY (made) THEN GRANT EXECUTE ON FUNCTION aws_ml.index_batch() TO PUBLIC; END IF;
  IF to_regprocedure('aws_ml.analyze_batch()')::oid = ANY (made) THEN GRANT EXECUTE ON FUNCTION aws_ml.analyze_batch() TO PUBLIC; END IF;
  IF to_regprocedure('aws_ml.view_definition(oid)')::oid = ANY (made) THEN GRANT EXECUTE ON FUNCTION aws_ml.view_definition(oid) TO PUBLIC; END IF;
  IF to_regprocedure('aws_ml.catalog_rows(text)')::oid = ANY (made) THEN GRANT EXECUTE ON FUNCTION aws_ml.catalog_rows(text) TO PUBLIC; END IF;
END
$upgrade$;
