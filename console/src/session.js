// Who is signed in, what the role allows, and the server facts (org name, server name, poll
// schedule). Controls a role may not use are never built: pages ask `can(…)` before adding them.

import { api, get, setCsrfToken } from './api.js';

export const state = {
  admin: null, // { email, display_name, role, created_at }
  server: null, // GET /api/v1/server
};

const RANK = { viewer: 0, operator: 1, admin: 2 };

/**
 * What the signed-in role may do, as the API enforces it:
 * - 'operate': device commands, retire, profiles, groups and membership (operator, admin)
 * - 'administer': users, enrollment tokens, admin accounts (admin)
 * - 'tokens': create and revoke its own API tokens (operator, admin; the console shows viewers
 *   no write controls at all)
 */
export function can(what) {
  const rank = RANK[state.admin?.role] ?? -1;
  switch (what) {
    case 'operate':
    case 'tokens':
      return rank >= RANK.operator;
    case 'administer':
      return rank >= RANK.admin;
    default:
      return false;
  }
}

/** Resumes a session from the cookie; false when there is none. */
export async function resume() {
  try {
    const s = await api('GET', '/api/v1/session', undefined, { signIn: true });
    state.admin = s.admin;
    setCsrfToken(s.csrf_token);
    return true;
  } catch (e) {
    if (e.status === 401) return false;
    throw e;
  }
}

export async function signIn(email, password) {
  const s = await api('POST', '/api/v1/session', { email, password }, { signIn: true });
  state.admin = s.admin;
  setCsrfToken(s.csrf_token);
}

export async function signOut() {
  try {
    await api('DELETE', '/api/v1/session', undefined, { signIn: true });
  } finally {
    forget();
  }
}

export function forget() {
  state.admin = null;
  state.server = null;
  setCsrfToken(null);
}

export async function loadServer() {
  state.server = await get('/api/v1/server');
  return state.server;
}
