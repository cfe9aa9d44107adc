import { useCallback, useEffect, useRef, useState } from 'react';
import { ApiError, graphql } from '../api/client';
import { useSession } from './session';

/** The state of a GraphQL query a page depends on. */
export interface QueryState<T> {
  data: T | null;
  error: ApiError | null;
  loading: boolean;
  /** Sends the query again (after a change), keeping the current data on screen meanwhile. */
  reload: () => Promise<void>;
}

function asApiError(error: unknown): ApiError {
  return error instanceof ApiError ? error : new ApiError(String(error), 'ERROR');
}

/**
 * Runs a query with the signed-in key when the page shows and whenever its variables change; a
 * late answer to an older request never overwrites a newer one. `skip` waits (e.g. for an id).
 */
export function useQuery<T>(query: string, variables?: Record<string, unknown>, skip = false): QueryState<T> {
  const { apiKey } = useSession();
  const [state, setState] = useState<{ data: T | null; error: ApiError | null; loading: boolean }>({
    data: null,
    error: null,
    loading: !skip,
  });
  const serial = useRef(0);
  const key = JSON.stringify(variables ?? {});

  const run = useCallback(async () => {
    const mine = ++serial.current;
    setState((s) => ({ ...s, loading: true }));
    try {
      const data = await graphql<T>(apiKey, query, JSON.parse(key) as Record<string, unknown>);
      if (mine === serial.current) setState({ data, error: null, loading: false });
    } catch (error) {
      if (mine === serial.current)
        setState((s) => ({ data: s.data, error: asApiError(error), loading: false }));
    }
  }, [apiKey, query, key]);

  useEffect(() => {
    if (!skip) void run();
  }, [run, skip]);

  return { ...state, reload: run };
}

/** The state of a mutation: run it, then read its error (shown next to the form) or its result. */
export function useMutation<T>(query: string) {
  const { apiKey } = useSession();
  const [state, setState] = useState<{ error: ApiError | null; busy: boolean }>({ error: null, busy: false });
  const mutate = useCallback(
    async (variables?: Record<string, unknown>): Promise<T | null> => {
      setState({ error: null, busy: true });
      try {
        const data = await graphql<T>(apiKey, query, variables);
        setState({ error: null, busy: false });
        return data;
      } catch (error) {
        setState({ error: asApiError(error), busy: false });
        return null;
      }
    },
    [apiKey, query],
  );
  const reset = useCallback(() => setState({ error: null, busy: false }), []);
  return { ...state, mutate, reset };
}
