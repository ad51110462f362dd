export { ERROR_CODES, type ErrorCode, type ErrorCodeInfo } from './codes.js';
export { FerryError, isFerryError, toFerryError } from './ferry-error.js';
