import { createContext, useContext } from 'react';
import type { User } from '../api/schema';

/** Where the API key lives while the tab is open: sessionStorage, so it ends with the tab. */
export const KEY_STORAGE = 'broker.admin.apiKey';

/** The signed-in user and the key its requests carry. */
export interface Session {
  apiKey: string;
  me: User;
  signOut: () => void;
  /**
   * After `rotateApiKey`: the old key stopped working, so this tab carries on with the new one (kept
   * for the tab like the old one) and the user as the rotation answered it.
   */
  replaceKey: (apiKey: string, me: User) => void;
}

export const SessionContext = createContext<Session | null>(null);

/** The current session; only pages shown after sign-in use it. */
export function useSession(): Session {
  const session = useContext(SessionContext);
  if (!session) throw new Error('useSession outside a signed-in page');
  return session;
}

export function storedKey(): string | null {
  try {
    return window.sessionStorage.getItem(KEY_STORAGE);
  } catch {
    return null;
  }
}

export function storeKey(key: string | null) {
  try {
    if (key === null) window.sessionStorage.removeItem(KEY_STORAGE);
    else window.sessionStorage.setItem(KEY_STORAGE, key);
  } catch {
    // Storage refused (private mode): the session lasts until the page is reloaded.
  }
}
