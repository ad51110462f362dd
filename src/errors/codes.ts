/**
 * The one table of Ferry's error codes. Every error Ferry raises carries one of these codes; the
 * HTTP input maps the code to its status, the CLI prints it, and `docs/errors.md` is generated from
 * this table (a test keeps the two equal). Codes are never reused: retire one by marking it, not by
 * giving its name a new meaning.
 */

export interface ErrorCodeInfo {
  /** HTTP status the serving inputs answer with. */
  readonly status: number;
  /** What went wrong, in one line, for the docs. */
  readonly meaning: string;
  /** What the user should do about it, for the docs. */
  readonly action: string;
}

export const ERROR_CODES = {
  FERRY_CONFIG_NOT_FOUND: {
    status: 400,
    meaning: 'No ferry.yaml was found in the project folder.',
    action: 'Run `ferry init` in the folder, or pass `--project <dir>`.',
  },
  FERRY_CONFIG_INVALID: {
    status: 400,
    meaning: 'ferry.yaml or a FERRY_ environment variable does not match the expected shape.',
    action: 'Fix the value at the path the message names; it states what was expected.',
  },
  FERRY_ARGUMENT_INVALID: {
    status: 400,
    meaning: 'A command-line argument or API parameter is missing or malformed.',
    action: 'Run the command with `--help` to see what it accepts.',
  },
  FERRY_DATA_UNREADABLE: {
    status: 400,
    meaning: 'A data file could not be read (missing, wrong format, malformed content).',
    action: 'Check the path and the format; CSV, Parquet and JSON lines are supported.',
  },
  FERRY_DATA_EMPTY: {
    status: 400,
    meaning: 'A table has no rows, or no usable feature columns.',
    action: 'Give a file with a header and at least a few rows of data.',
  },
  FERRY_VALIDATION_FAILED: {
    status: 422,
    meaning: 'Data broke a validation rule set whose policy is `fail`, so nothing was written.',
    action:
      'Read the failed rules in the message (or `ferry data validate <file> --rules <name>`), fix the data, or change the rules or the policy.',
  },
  FERRY_COLUMN_UNKNOWN: {
    status: 400,
    meaning: 'A column named in a command or configuration is not in the table.',
    action: 'Use one of the columns the message lists (names are case-sensitive).',
  },
  FERRY_TARGET_INVALID: {
    status: 400,
    meaning: 'The target column cannot be learned for the requested task.',
    action: 'Pick another target or set `--task` to match it (classification needs 2+ classes).',
  },
  FERRY_TRAINING_FAILED: {
    status: 500,
    meaning: 'Every candidate model failed to train.',
    action:
      'Read the per-candidate reasons in the message; check the data for constant or empty columns.',
  },
  FERRY_MODEL_NOT_FOUND: {
    status: 404,
    meaning: 'No model is registered under that name.',
    action: 'List models with `ferry models list` or `ferry train`, then retry.',
  },
  FERRY_MODEL_VERSION_NOT_FOUND: {
    status: 404,
    meaning: 'The model exists but has no such version or alias.',
    action: 'See the versions and aliases with `ferry models show <model>`.',
  },
  FERRY_MODEL_INVALID: {
    status: 500,
    meaning: 'A stored model artifact cannot be decoded by its runtime.',
    action: 'Re-register the model; the artifact was written by an incompatible Ferry version.',
  },
  FERRY_EXPORT_UNSUPPORTED: {
    status: 422,
    meaning: 'The model has a part the requested export format cannot express.',
    action:
      'Read the part the message names; serve the model with its native runtime, or retrain without that part.',
  },
  FERRY_ARTIFACT_NOT_FOUND: {
    status: 404,
    meaning: 'An artifact the registry points to is missing from the artifact store.',
    action:
      'Check that the artifact store configured in ferry.yaml is the one the model was trained with.',
  },
  FERRY_ARTIFACT_CORRUPT: {
    status: 500,
    meaning: "An artifact's SHA-256 does not match the one recorded when it was registered.",
    action: 'The file was changed or damaged: restore it, or register the model again.',
  },
  FERRY_REQUEST_MALFORMED: {
    status: 400,
    meaning: 'The request body is not valid JSON or not an object of the expected shape.',
    action: 'Send a JSON body as the Open Inference Protocol v2 describes.',
  },
  FERRY_REQUEST_TOO_LARGE: {
    status: 413,
    meaning: 'The request body is larger than the configured limit.',
    action: 'Send fewer rows per request, or raise `server.body_limit_bytes`.',
  },
  FERRY_INPUT_UNKNOWN: {
    status: 400,
    meaning: 'An inference input names a column the model does not take.',
    action: "Use the input names in the model's metadata (`GET /v2/models/{name}`).",
  },
  FERRY_INPUT_MISSING: {
    status: 400,
    meaning: 'An inference request lacks a column the model needs.',
    action: "Send every input listed in the model's metadata.",
  },
  FERRY_INPUT_SHAPE: {
    status: 400,
    meaning: "An input tensor's shape does not match its data or the model.",
    action: 'Send `[N]` per column, or one `[N, F]` tensor with F the number of model inputs.',
  },
  FERRY_INPUT_DATATYPE: {
    status: 400,
    meaning: "An input tensor's datatype or values do not match what the column holds.",
    action: 'Use FP64, FP32, INT64 or BOOL for numeric columns and BYTES for string columns.',
  },
  FERRY_ENTITY_KEY_MISSING: {
    status: 400,
    meaning: 'A request to an enriching endpoint lacks the entity key.',
    action: "Send the entity's key columns (for example `card_id`) with each record.",
  },
  FERRY_NOT_READY: {
    status: 503,
    meaning: 'The server is starting or a model has not finished loading.',
    action: 'Retry after `GET /v2/health/ready` answers 200.',
  },
  FERRY_OVERLOADED: {
    status: 503,
    meaning: 'The server has reached its bound on queued work.',
    action: 'Retry with backoff, or add workers.',
  },
  FERRY_NOT_FOUND: {
    status: 404,
    meaning: 'No route matches the request path.',
    action: 'See the README for the HTTP API.',
  },
  FERRY_FEATURE_SET_UNKNOWN: {
    status: 404,
    meaning: 'No feature set of that name is defined.',
    action: 'Define it under `feature_sets:` in ferry.yaml.',
  },
  FERRY_FEATURE_VECTOR_UNKNOWN: {
    status: 404,
    meaning: 'No feature vector of that name is defined.',
    action: 'Define it under `feature_vectors:` in ferry.yaml.',
  },
  FERRY_FEATURE_UNKNOWN: {
    status: 400,
    meaning: 'A feature vector names a feature its feature set does not define.',
    action: 'Use `<feature_set>.<feature>` with a defined feature or aggregation name.',
  },
  FERRY_ENDPOINT_NOT_FOUND: {
    status: 404,
    meaning: 'No endpoint of that name is deployed.',
    action: 'List endpoints with `ferry endpoints list`.',
  },
  FERRY_STEP_FAILED: {
    status: 502,
    meaning: 'A step of an endpoint graph failed and its error policy is `fail`.',
    action:
      'Read the step and cause in the message; give the step `on_error: skip` or `default` if the endpoint may answer without it.',
  },
  FERRY_STEP_TIMEOUT: {
    status: 504,
    meaning: 'A step of an endpoint graph, or the whole graph, took longer than its `timeout`.',
    action:
      'Find the slow step in `ferry_step_duration_seconds`; raise its `timeout`, or give it `on_error: skip` or `default`.',
  },
  FERRY_RUN_NOT_FOUND: {
    status: 404,
    meaning: 'No run has that id.',
    action: 'List runs with `ferry runs list`.',
  },
  FERRY_MONITOR_NO_DATA: {
    status: 404,
    meaning: 'There is no logged traffic (or no training profile) to compare for this model.',
    action: 'Send predictions through `ferry serve` first; the inference log feeds the monitor.',
  },
  FERRY_BACKEND_UNSUPPORTED: {
    status: 501,
    meaning: 'The configured backend does not support the requested operation.',
    action: 'Switch to a backend that supports it (the message names the one in use).',
  },
  FERRY_BACKEND_UNAVAILABLE: {
    status: 503,
    meaning: 'A storage, cache or message engine could not be reached or failed.',
    action: 'Check that the engine is running and that ferry.yaml points to it.',
  },
  FERRY_STORE_CLOSED: {
    status: 500,
    meaning: 'A store was used after it was closed.',
    action: 'This is a bug in the caller: open the store again or keep it open while in use.',
  },
  FERRY_INTERNAL: {
    status: 500,
    meaning: 'An unexpected failure inside Ferry.',
    action: 'Report it with the log line carrying the request id.',
  },
} as const satisfies Record<string, ErrorCodeInfo>;

export type ErrorCode = keyof typeof ERROR_CODES;
