// SecureAuth administration page: find a user, see their sessions, end sessions, disable or
// enable the account. The session is the HttpOnly cookie; nothing is stored in the browser.
// Every change needs the administrator's password again within the privilege window: when the
// API answers `reauthentication_required`, the password form is shown and the change retried.
'use strict';

(() => {
  const byId = (id) => document.getElementById(id);
  let current = null; // the user shown
  let nextCursor = null;
  let pending = null; // what to retry after the password

  async function api(method, path, body) {
    const init = { method, headers: { Accept: 'application/json' }, credentials: 'same-origin', cache: 'no-store' };
    if (body !== undefined) {
      init.headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    let res;
    try { res = await fetch(path, init); } catch {
      return { ok: false, status: 0, error: { code: 'network', message: 'The server could not be reached. Try again.' } };
    }
    let data = null;
    if (res.status !== 204) { try { data = await res.json(); } catch { data = null; } }
    if (res.ok) return { ok: true, status: res.status, data };
    const error = data && data.error ? data.error : { code: 'http_' + res.status, message: 'Something went wrong (HTTP ' + res.status + ').' };
    return { ok: false, status: res.status, error };
  }

  function notice(text) {
    const el = byId('notice');
    el.textContent = text;
    el.hidden = !text;
  }
  function formError(text) {
    const box = byId('form-error');
    box.textContent = text || '';
    box.hidden = !text;
    if (text) box.focus();
  }

  /** Runs `work` with the button disabled and its busy label shown. */
  async function busy(button, work) {
    const label = button.textContent;
    button.disabled = true;
    button.setAttribute('aria-busy', 'true');
    if (button.dataset.busyLabel) button.textContent = button.dataset.busyLabel;
    try { await work(); } finally {
      button.disabled = false;
      button.removeAttribute('aria-busy');
      button.textContent = label;
    }
  }

  /** Calls the API; on `reauthentication_required` asks for the password and retries once it is given. */
  async function call(method, path, body, then) {
    formError('');
    const r = await api(method, path, body);
    if (r.ok) { await then(r.data); return; }
    if (r.status === 401) { window.location.assign('/ui/login'); return; }
    if (r.error.code === 'reauthentication_required') {
      pending = () => call(method, path, body, then);
      byId('reauth-form').hidden = false;
      byId('reauth-password').focus();
      return;
    }
    if (r.error.code === 'forbidden') {
      byId('search').hidden = true;
      byId('user').hidden = true;
    }
    formError(r.error.message);
  }

  const when = (iso) => (iso ? new Date(iso).toLocaleString() : '');
  const STATES = { active: 'Active', unverified: 'Not verified', disabled: 'Disabled' };

  function userItem(u) {
    const li = document.createElement('li');
    const who = document.createElement('span');
    who.className = 'who';
    who.textContent = u.email;
    const meta = document.createElement('span');
    meta.className = 'meta';
    meta.textContent = STATES[u.state] + (u.role === 'admin' ? ' · administrator' : '');
    if (u.state === 'disabled') meta.classList.add('badge', 'disabled');
    const open = document.createElement('button');
    open.type = 'button';
    open.textContent = 'Open';
    open.setAttribute('aria-label', 'Open ' + u.email);
    open.addEventListener('click', () => show(u.id));
    li.append(who, meta, open);
    return li;
  }

  function query(cursor) {
    const form = byId('search-form');
    const params = new URLSearchParams({ limit: '20' });
    for (const name of ['email', 'state', 'role']) {
      const value = form.elements[name].value.trim();
      if (value) params.set(name, value);
    }
    if (cursor) params.set('cursor', cursor);
    return '/admin/users?' + params.toString();
  }

  async function search(cursor) {
    await call('GET', query(cursor), undefined, async (data) => {
      byId('loading').hidden = true;
      byId('search').hidden = false;
      const list = byId('results');
      if (!cursor) list.replaceChildren();
      for (const u of data.users) list.append(userItem(u));
      if (!data.users.length && !cursor) {
        const li = document.createElement('li');
        li.textContent = 'No user matches.';
        list.append(li);
      }
      nextCursor = data.next_cursor || null;
      byId('more').hidden = !nextCursor;
    });
  }

  async function show(id) {
    await call('GET', '/admin/users/' + encodeURIComponent(id), undefined, async (data) => {
      current = data.user;
      byId('user').hidden = false;
      byId('user-email').textContent = data.user.email;
      byId('user-state').textContent = STATES[data.user.state];
      byId('user-role').textContent = data.user.role === 'admin' ? 'Administrator' : 'User';
      byId('user-created').textContent = when(data.user.created_at);
      byId('user-session-count').textContent = String(data.sessions.length) + (data.more_sessions ? '+' : '');
      const disabled = data.user.state === 'disabled';
      byId('disable').hidden = disabled;
      byId('enable').hidden = !disabled;
      const list = byId('user-sessions');
      list.replaceChildren();
      for (const s of data.sessions) {
        const li = document.createElement('li');
        const meta = document.createElement('span');
        meta.className = 'meta';
        meta.textContent = 'Since ' + when(s.created_at) + (s.ip ? ' · ' + s.ip : '') + (s.user_agent ? ' · ' + s.user_agent : '');
        const end = document.createElement('button');
        end.type = 'button';
        end.className = 'danger';
        end.textContent = 'End';
        end.setAttribute('aria-label', 'End the session since ' + when(s.created_at));
        end.addEventListener('click', () => busy(end, () => call('DELETE',
          '/admin/users/' + encodeURIComponent(current.id) + '/sessions/' + encodeURIComponent(s.id), undefined,
          async () => { notice('The session was ended.'); await show(current.id); })));
        li.append(meta, end);
        list.append(li);
      }
      byId('user-email').scrollIntoView({ block: 'start' });
    });
  }

  function change(buttonId, method, suffix, message) {
    const button = byId(buttonId);
    button.addEventListener('click', () => busy(button, () => call(method,
      '/admin/users/' + encodeURIComponent(current.id) + suffix, undefined,
      async () => { notice(message); await show(current.id); await search(); })));
  }

  byId('reauth-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const form = event.currentTarget;
    const button = form.querySelector('button[type="submit"]');
    busy(button, async () => {
      const password = byId('reauth-password').value;
      if (!password) { formError('Enter your password.'); return; }
      const code = byId('reauth-code').value.trim();
      const body = code ? { password, second_factor: code } : { password };
      const r = await api('POST', '/admin/reauth', body);
      if (!r.ok) {
        if (r.status === 401) { window.location.assign('/ui/login'); return; }
        if (r.error.code === 'second_factor_required') {
          formError('Enter a code from your authenticator app or a recovery code.');
          byId('reauth-code').focus();
          return;
        }
        formError(r.error.code === 'invalid_credentials' ? 'The password is wrong.' : r.error.message);
        return;
      }
      byId('reauth-password').value = '';
      byId('reauth-code').value = '';
      form.hidden = true;
      formError('');
      const retry = pending;
      pending = null;
      if (retry) await retry();
    });
  });
  byId('search-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const button = event.currentTarget.querySelector('button[type="submit"]');
    busy(button, () => search());
  });
  byId('more').addEventListener('click', () => busy(byId('more'), () => search(nextCursor)));
  change('end-all', 'DELETE', '/sessions', 'Every session of the account was ended.');
  change('disable', 'POST', '/disable', 'The account is disabled and every session was ended.');
  change('enable', 'POST', '/enable', 'The account is enabled again.');

  search().then(() => {
    if (!byId('search').hidden) return;
    byId('loading').hidden = true;
  });
})();
