/** Ferry's version, reported by `ferry --version`, `GET /v2` and recorded with every run. */
export const FERRY_VERSION = '0.1.0';
