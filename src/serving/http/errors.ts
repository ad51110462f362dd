/**
 * The one place HTTP replies to errors are decided: a FerryError answers with the status of its
 * code (from the error-code table) and `{ "error": message, "code": code }`; Fastify's own errors
 * (unparsable JSON, body too large, wrong content type, a body that fails the JSON schema) become
 * the matching Ferry code first. Anything else is a 500 whose details stay in the server log.
 */
import type { FastifyError } from 'fastify';
import { ERROR_CODES, FerryError, type ErrorCode } from '../../errors/index.js';

export interface ErrorReply {
  readonly status: number;
  readonly body: { readonly error: string; readonly code: ErrorCode };
  /** True for failures of the server rather than of the request (logged as errors). */
  readonly internal: boolean;
}

const SEND_JSON =
  'send a JSON object as the Open Inference Protocol v2 describes, e.g. {"inputs": [{"name": "amount", "shape": [1], "datatype": "FP64", "data": [12.5]}]}';

function isFastifyError(value: unknown): value is FastifyError {
  return value instanceof Error && typeof (value as Partial<FastifyError>).code === 'string';
}

/** What the error reply may mention about the request. */
export interface ErrorContext {
  readonly requestId: string;
  readonly bodyLimitBytes: number;
  readonly contentType: string | undefined;
}

/** The coded error a failure means for the client. */
export function toClientError(err: unknown, context: ErrorContext): FerryError | undefined {
  if (err instanceof FerryError) return err;
  if (!isFastifyError(err)) return undefined;
  switch (err.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new FerryError(
        'FERRY_REQUEST_TOO_LARGE',
        `request body is larger than the limit of ${context.bodyLimitBytes} bytes; send fewer rows per request or raise server.body_limit_bytes`,
      );
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new FerryError(
        'FERRY_REQUEST_MALFORMED',
        `content type '${context.contentType ?? '(none)'}' is not supported; send the body as application/json`,
      );
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new FerryError('FERRY_REQUEST_MALFORMED', `the request body is empty; ${SEND_JSON}`);
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return new FerryError(
        'FERRY_REQUEST_MALFORMED',
        `the request body is not valid JSON; ${SEND_JSON}`,
      );
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new FerryError(
        'FERRY_REQUEST_MALFORMED',
        'the Content-Length header does not match the body sent',
      );
    case 'FST_ERR_VALIDATION':
      return new FerryError(validationCode(err), `request ${err.message}; ${SEND_JSON}`);
  }
  const status = err.statusCode ?? 500;
  if (status === 413) return new FerryError('FERRY_REQUEST_TOO_LARGE', err.message);
  if (status >= 400 && status < 500) return new FerryError('FERRY_REQUEST_MALFORMED', err.message);
  return undefined;
}

/** Where a body fails the schema decides the code: a bad shape or datatype gets its own. */
function validationCode(err: FastifyError): ErrorCode {
  const path = err.validation?.[0]?.instancePath ?? '';
  if (/\/inputs\/\d+\/shape/.test(path)) return 'FERRY_INPUT_SHAPE';
  if (/\/inputs\/\d+\/datatype$/.test(path)) return 'FERRY_INPUT_DATATYPE';
  return 'FERRY_REQUEST_MALFORMED';
}

/**
 * @example
 * errorReply(new FerryError('FERRY_INPUT_MISSING', '...'), { requestId: 'r1', bodyLimitBytes: 4_194_304, contentType: undefined }).status // 400
 */
export function errorReply(err: unknown, context: ErrorContext): ErrorReply {
  const client = toClientError(err, context);
  if (client) {
    const status = ERROR_CODES[client.code].status;
    return { status, body: { error: client.message, code: client.code }, internal: status >= 500 };
  }
  return {
    status: 500,
    body: {
      error: `internal error; the server log has the details under request id ${context.requestId}`,
      code: 'FERRY_INTERNAL',
    },
    internal: true,
  };
}
