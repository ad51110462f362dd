// Prints docs/errors.md from the error-code table (`npm run docs:errors`).
import { renderErrorsMarkdown } from '../errors/docs.js';

process.stdout.write(renderErrorsMarkdown());
