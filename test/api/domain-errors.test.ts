import { describe, expect, it } from 'vitest';
import { domainErrorToHttp, HttpError } from '../../src/api/errors.js';
import {
  CheckpointUnusableError,
  ModelNotExportableError,
  ModelUnavailableError,
  QueueUnavailableError,
  RunConflictError,
  RunNotFoundError,
} from '../../src/runs/run-errors.js';

describe('the HTTP face of the run domain errors', () => {
  it('gives each domain error its status and title, with the error message as the detail', () => {
    const cases: Array<[Error, number, string]> = [
      [new RunNotFoundError('run r1'), 404, 'Not Found'],
      [new RunConflictError('run r1 is succeeded'), 409, 'Conflict'],
      [new QueueUnavailableError('redis down'), 503, 'Service Unavailable'],
      [new CheckpointUnusableError('checkpoint files missing'), 409, 'Checkpoint unusable'],
      [new ModelNotExportableError('LRN layers cannot be exported'), 422, 'Not exportable'],
    ];
    for (const [error, status, title] of cases) {
      const http = domainErrorToHttp(error);
      expect(http, error.name).toBeInstanceOf(HttpError);
      expect(
        { status: http!.status, title: http!.title, detail: http!.message },
        error.name,
      ).toEqual({
        status,
        title,
        detail: error.message,
      });
    }
  });

  it('answers a model that cannot be served now with 503 and Retry-After', () => {
    const error = new ModelUnavailableError('all 1 model threads (PREDICT_THREADS) are busy', 7);
    const http = domainErrorToHttp(error);
    expect(http).toBeInstanceOf(HttpError);
    expect({ status: http!.status, detail: http!.message, headers: http!.headers }).toEqual({
      status: 503,
      detail: error.message,
      headers: { 'Retry-After': '7' },
    });
  });

  it('leaves other errors to the 500 path', () => {
    expect(domainErrorToHttp(new Error('boom'))).toBeUndefined();
    expect(domainErrorToHttp('not an error')).toBeUndefined();
  });
});
