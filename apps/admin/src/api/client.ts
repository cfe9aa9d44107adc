/**
 * The admin UI talks to the broker through its public API only: the control-plane GraphQL at
 * `/graphql` and the REST upload route. Whatever the UI does, a script can do with the same key.
 */

/** A problem the broker found in one input, e.g. `{ path: 'grants[0].fields[1].name', message: 'is required' }`. */
export interface InputProblem {
  path: string;
  message: string;
}

/** A refusal or failure, with the broker's contract code (UNAUTHENTICATED, FORBIDDEN, BAD_USER_INPUT, ...). */
export class ApiError extends Error {
  constructor(
    message: string,
    readonly code: string,
    /** Per-input problems, when the broker listed them (invalid agreements and dataset definitions). */
    readonly problems: InputProblem[] = [],
    readonly status = 0,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

interface GraphqlResponse<T> {
  data?: T | null;
  errors?: { message: string; extensions?: { code?: string; details?: unknown } }[];
}

function problemsOf(details: unknown): InputProblem[] {
  if (!Array.isArray(details)) return [];
  return details.filter(
    (d): d is InputProblem =>
      typeof d === 'object' &&
      d !== null &&
      typeof (d as InputProblem).path === 'string' &&
      typeof (d as InputProblem).message === 'string',
  );
}

/** Sends a GraphQL operation to the control plane with the given API key; throws {@link ApiError}. */
export async function graphql<T>(
  apiKey: string,
  query: string,
  variables?: Record<string, unknown>,
  /** `/data/graphql` for the data plane (an analyst's counts). */
  path: '/graphql' | '/data/graphql' = '/graphql',
): Promise<T> {
  let response: Response;
  try {
    response = await fetch(path, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${apiKey}` },
      body: JSON.stringify({ query, variables }),
    });
  } catch {
    throw new ApiError('The broker cannot be reached. Check your connection and try again.', 'NETWORK');
  }
  let body: GraphqlResponse<T>;
  try {
    body = (await response.json()) as GraphqlResponse<T>;
  } catch {
    throw new ApiError(
      `The broker answered ${response.status} without a readable body.`,
      'HTTP',
      [],
      response.status,
    );
  }
  const error = body.errors?.[0];
  if (error) {
    throw new ApiError(
      error.message,
      error.extensions?.code ?? 'ERROR',
      problemsOf(error.extensions?.details),
      response.status,
    );
  }
  if (!body.data) throw new ApiError('The broker answered without data.', 'ERROR', [], response.status);
  return body.data;
}

/** A row the broker refused in an upload: its 0-based index among the data rows, and why. */
export interface RowError {
  row: number;
  field: string | null;
  message: string;
}

/** What an ingestion did: all or nothing, so `rejected > 0` means nothing was written. */
export interface IngestReport {
  inserted: number;
  updated: number;
  rejected: number;
  errors: RowError[];
}

/**
 * Uploads a CSV file to `POST /api/datasets/{id}/records`, reporting the bytes sent as they go.
 * Resolves with the report both when it was written (200) and when rows were refused (422).
 */
export function uploadCsv(
  apiKey: string,
  datasetId: string,
  file: Blob,
  onProgress: (sent: number, total: number) => void,
): { done: Promise<IngestReport>; abort: () => void } {
  const xhr = new XMLHttpRequest();
  const done = new Promise<IngestReport>((resolve, reject) => {
    xhr.open('POST', `/api/datasets/${encodeURIComponent(datasetId)}/records`);
    xhr.setRequestHeader('content-type', 'text/csv');
    xhr.setRequestHeader('authorization', `Bearer ${apiKey}`);
    xhr.responseType = 'text';
    xhr.upload.onprogress = (event) =>
      onProgress(event.loaded, event.lengthComputable ? event.total : file.size);
    xhr.onload = () => {
      let body: unknown = null;
      try {
        body = JSON.parse(xhr.responseText) as unknown;
      } catch {
        // Handled below: a body that is not JSON is reported with its status.
      }
      const report = body as IngestReport | null;
      if ((xhr.status === 200 || xhr.status === 422) && report && Array.isArray(report.errors)) {
        onProgress(file.size, file.size);
        resolve(report);
        return;
      }
      const refusal = body as { error?: string; code?: string } | null;
      reject(
        new ApiError(
          refusal?.error ?? `The upload failed (HTTP ${xhr.status}).`,
          refusal?.code ?? 'HTTP',
          [],
          xhr.status,
        ),
      );
    };
    xhr.onerror = () =>
      reject(new ApiError('The upload was interrupted: the broker cannot be reached.', 'NETWORK'));
    xhr.onabort = () => reject(new ApiError('The upload was cancelled.', 'ABORTED'));
    xhr.send(file);
  });
  return { done, abort: () => xhr.abort() };
}
