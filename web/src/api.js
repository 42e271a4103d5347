// Same-origin calls to the JSON API; an error answer becomes an Error with the server's message.
async function request(path) {
  const res = await fetch(path, { headers: { Accept: 'application/json' } });
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
  const res = await request(path);
  return { buffer: await res.arrayBuffer(), total: Number(res.headers.get('X-Total-Points')) };
}
