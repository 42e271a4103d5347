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
export async function apiBytes(path) { return (await request(path)).arrayBuffer(); }
