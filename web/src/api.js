// Same-origin calls to the API; an error answer becomes an Error with the server's message.
import { tableFromIPC } from 'apache-arrow';

async function request(path, accept = 'application/json') {
  const res = await fetch(path, { headers: { Accept: accept } });
  if (!res.ok) {
    let message = `${res.status} ${res.statusText}`;
    try { message = (await res.json()).error || message; } catch { /* not JSON */ }
    throw new Error(message);
  }
  return res;
}

export async function api(path) { return (await request(path)).json(); }
/** Binary answer and the number of points that matched before any level-of-detail cut. */
export async function apiBytes(path) {
  const res = await request(path, 'application/octet-stream');
  return { buffer: await res.arrayBuffer(), total: Number(res.headers.get('X-Total-Points')) };
}
/** An Arrow IPC stream answer as an apache-arrow Table (typed arrays, no text parsing). */
export async function apiTable(path) {
  const res = await request(path, 'application/vnd.apache.arrow.stream');
  return tableFromIPC(new Uint8Array(await res.arrayBuffer()));
}
