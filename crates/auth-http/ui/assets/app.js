// SecureAuth web UI: small vanilla script shared by every page (body[data-page] picks the part).
// The session lives only in the HttpOnly cookie set by `POST /login` with the cookie transport:
// no token is ever read, stored or shown here. Only the email address typed on one page is kept
// in sessionStorage to fill in the next page.
'use strict';

(() => {
  const page = document.body.dataset.page;
  const EMAIL_KEY = 'secureauth.email';
  const NOTICES = {
    sent: 'We mailed you a 6-digit code. It is valid for 10 minutes.',
    verified: 'Your email address is verified. Log in to continue.',
    reset: 'Your password was changed and every session was logged out. Log in with the new password.',
    'reset-sent': 'If the address has an account, a reset code is on its way. No mail? You can ask for a new code in a minute.',
    'login-code-sent': 'If the address has an account, a login code is on its way. No mail? You can ask for a new code in a minute.',
    'logged-out': 'You are logged out.',
    'logged-out-all': 'You are logged out on every device.',
    expired: 'Log in to see your account.',
    deleted: 'Your account was deleted and every session was logged out. A confirmation is on its way to your mailbox.',
  };
  // Errors without `fields` that still concern one field.
  const CODE_FIELDS = {
    invalid_otp: 'otp',
    otp_expired: 'otp',
    too_many_attempts: 'otp',
    email_taken: 'email',
  };

  const byId = (id) => document.getElementById(id);

  function rememberEmail(email) {
    try { sessionStorage.setItem(EMAIL_KEY, email); } catch { /* storage disabled */ }
  }
  function rememberedEmail() {
    try { return sessionStorage.getItem(EMAIL_KEY) || ''; } catch { return ''; }
  }

  /** Calls the JSON API; resolves to {ok, status, data} or {ok: false, status, error}. */
  async function api(method, path, body) {
    const init = {
      method,
      headers: { Accept: 'application/json' },
      credentials: 'same-origin',
      cache: 'no-store',
    };
    if (body !== undefined) {
      init.headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    let res;
    try {
      res = await fetch(path, init);
    } catch {
      return { ok: false, status: 0, error: { code: 'network', message: 'The server could not be reached. Check your connection and try again.' } };
    }
    let data = null;
    if (res.status !== 204) {
      try { data = await res.json(); } catch { data = null; }
    }
    if (res.ok) return { ok: true, status: res.status, data };
    const error = data && data.error && typeof data.error.message === 'string'
      ? data.error
      : { code: 'http_' + res.status, message: 'Something went wrong (HTTP ' + res.status + '). Try again.' };
    return { ok: false, status: res.status, error };
  }

  function go(path) { window.location.assign(path); }

  function showNotice(text) {
    const el = byId('notice');
    if (!el || !text) return;
    el.textContent = text;
    el.hidden = false;
  }

  // ---- errors -------------------------------------------------------------------------------

  function fieldInput(form, name) {
    return form.querySelector('[name="' + name + '"]');
  }

  function setFieldError(form, name, message) {
    const slot = form.querySelector('[data-error-for="' + name + '"]');
    const input = fieldInput(form, name);
    if (!slot || !input) return null;
    slot.textContent = message;
    input.setAttribute('aria-invalid', 'true');
    return input;
  }

  /** A form-level message; `link` ({href, text}) is appended as a real link. */
  function setFormError(message, link) {
    const box = byId('form-error');
    if (!box) return null;
    box.textContent = message;
    if (link) {
      box.append(' ');
      const a = document.createElement('a');
      a.href = link.href;
      a.textContent = link.text;
      box.append(a);
    }
    box.hidden = false;
    return box;
  }

  function clearErrors(form) {
    const box = byId('form-error');
    if (box) { box.hidden = true; box.textContent = ''; }
    if (!form) return;
    form.querySelectorAll('[data-error-for]').forEach((el) => { el.textContent = ''; });
    form.querySelectorAll('[aria-invalid]').forEach((el) => el.removeAttribute('aria-invalid'));
  }

  /** Shows an API error next to its field(s), else at form level, and moves focus to it. */
  function showError(form, error, link) {
    let focus = null;
    const fields = error.fields && typeof error.fields === 'object' ? error.fields : {};
    for (const [name, message] of Object.entries(fields)) {
      const input = setFieldError(form, name, String(message));
      if (input) focus = focus || input;
      else focus = focus || setFormError(String(message));
    }
    if (!Object.keys(fields).length) {
      const name = CODE_FIELDS[error.code];
      focus = (name && setFieldError(form, name, error.message)) || setFormError(error.message, link);
    }
    if (focus) focus.focus();
  }

  /** Client-side checks; returns true when the form may be sent. */
  function validate(form, checks) {
    let first = null;
    for (const [name, message] of checks) {
      if (message) first = first || setFieldError(form, name, message);
    }
    if (first) first.focus();
    return !first;
  }

  const EMAIL_RE = /^[^\s@]+@[^\s@]+$/;
  function emailProblem(value) {
    if (!value) return 'Enter your email address.';
    if (!EMAIL_RE.test(value)) return 'Enter an email address like name@example.com.';
    return '';
  }
  function passwordProblem(value, label) {
    return value ? '' : 'Enter ' + label + '.';
  }

  // ---- busy buttons -------------------------------------------------------------------------

  /** Runs `work` with `button` disabled and labelled busy; a second call meanwhile is ignored. */
  async function busy(button, work, others = []) {
    if (button.dataset.busy) return;
    const label = button.textContent;
    button.dataset.busy = '1';
    button.disabled = true;
    button.setAttribute('aria-busy', 'true');
    button.textContent = button.dataset.busyLabel || 'Working…';
    others.forEach((b) => { b.disabled = true; });
    let stay = false;
    try {
      stay = (await work()) === 'navigating';
    } finally {
      if (!stay) {
        delete button.dataset.busy;
        button.disabled = false;
        button.removeAttribute('aria-busy');
        button.textContent = label;
        others.forEach((b) => { b.disabled = false; });
      }
    }
  }

  /** Wires a form: validation, then `send` while the submit button shows progress. */
  function onSubmit(form, send) {
    const button = form.querySelector('button[type="submit"]');
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      if (button.dataset.busy) return;
      clearErrors(form);
      form.querySelectorAll('button.reveal').forEach(hidePassword);
      busy(button, send);
    });
  }

  // ---- fields -------------------------------------------------------------------------------

  function hidePassword(toggle) {
    const input = byId(toggle.getAttribute('aria-controls'));
    if (input) input.type = 'password';
    toggle.setAttribute('aria-pressed', 'false');
    toggle.textContent = 'Show';
    toggle.setAttribute('aria-label', 'Show password');
  }

  function wireRevealButtons() {
    document.querySelectorAll('button.reveal').forEach((toggle) => {
      hidePassword(toggle);
      toggle.addEventListener('click', () => {
        const input = byId(toggle.getAttribute('aria-controls'));
        if (!input) return;
        const show = input.type === 'password';
        input.type = show ? 'text' : 'password';
        toggle.setAttribute('aria-pressed', String(show));
        toggle.textContent = show ? 'Hide' : 'Show';
        toggle.setAttribute('aria-label', show ? 'Hide password' : 'Show password');
      });
    });
  }

  const CODE_RE = /^\d{6}$/;
  const CODE_MESSAGE = 'The code is the 6 digits from the mail.';

  /** The code field takes the 6 digits, typed or pasted with spaces around them, and nothing else. */
  function wireCodeField(form) {
    const input = fieldInput(form, 'otp');
    if (!input) return;
    const slot = form.querySelector('[data-error-for="otp"]');
    const complain = (message) => {
      slot.textContent = message;
      input.setAttribute('aria-invalid', 'true');
    };
    const settle = () => {
      slot.textContent = '';
      input.removeAttribute('aria-invalid');
    };
    input.addEventListener('paste', (event) => {
      const text = (event.clipboardData || window.clipboardData)?.getData('text') ?? '';
      event.preventDefault();
      const code = text.trim();
      if (CODE_RE.test(code)) {
        input.value = code;
        settle();
      } else {
        complain('Paste only the 6 digits of the code.');
      }
    });
    input.addEventListener('input', () => {
      const raw = input.value;
      const digits = raw.replace(/\D/g, '');
      if (digits !== raw.replace(/\s/g, '')) complain('Only digits: ' + CODE_MESSAGE);
      else settle();
      if (digits !== raw || digits.length > 6) input.value = digits.slice(0, 6);
    });
  }

  function codeValue(form) {
    return fieldInput(form, 'otp').value.trim();
  }

  function fillEmail(form) {
    const input = fieldInput(form, 'email');
    const params = new URLSearchParams(window.location.search);
    if (input && !input.value) input.value = rememberedEmail();
    showNotice(NOTICES[params.get('notice')]);
    return input;
  }

  /** A "send a new code" button: POSTs the email to `path`, reports at form level. */
  function wireResend(form, path, successText) {
    const button = byId('resend');
    if (!button) return;
    const submit = form.querySelector('button[type="submit"]');
    button.addEventListener('click', () => {
      if (button.dataset.busy || submit.dataset.busy) return;
      clearErrors(form);
      byId('notice').hidden = true;
      const email = fieldInput(form, 'email').value.trim();
      if (!validate(form, [['email', emailProblem(email)]])) return;
      busy(button, async () => {
        rememberEmail(email);
        const r = await api('POST', path, { email });
        if (r.ok) {
          showNotice(successText || (r.data && r.data.message));
          fieldInput(form, 'otp').focus();
        } else {
          showError(form, r.error);
        }
      }, [submit]);
    });
  }

  /** The login page's "email me a login code": mails a code to the typed address, then opens the code page. */
  function wireLoginCode(form) {
    const button = byId('login-code');
    if (!button) return;
    const submit = form.querySelector('button[type="submit"]');
    button.addEventListener('click', () => {
      if (button.dataset.busy || submit.dataset.busy) return;
      clearErrors(form);
      byId('notice').hidden = true;
      const email = fieldInput(form, 'email').value.trim();
      if (!validate(form, [['email', emailProblem(email)]])) return;
      busy(button, async () => {
        rememberEmail(email);
        const r = await api('POST', '/login/code', { email });
        if (!r.ok) { showError(form, r.error); return; }
        go('/ui/login-code?notice=login-code-sent');
      }, [submit]);
    });
  }

  // ---- pages --------------------------------------------------------------------------------

  // The second-step token lives only in this tab's sessionStorage, for at most 5 minutes: it
  // opens nothing without a code and works only from this browser.
  const MFA_KEY = 'secureauth.mfa_token';
  function toSecondStep(token) {
    sessionStorage.setItem(MFA_KEY, token);
    go('/ui/login-mfa');
    return 'navigating';
  }

  async function redirectIfLoggedIn() {
    const r = await api('GET', '/me');
    if (r.ok) window.location.replace('/ui/account');
  }

  const pages = {
    signup(form) {
      fillEmail(form);
      onSubmit(form, async () => {
        const email = fieldInput(form, 'email').value.trim();
        const password = fieldInput(form, 'password').value;
        if (!validate(form, [['email', emailProblem(email)], ['password', passwordProblem(password, 'a password')]])) return;
        const r = await api('POST', '/signup', { email, password });
        if (!r.ok) {
          showError(form, r.error, r.error.code === 'email_taken' ? { href: '/ui/login', text: 'Log in instead' } : undefined);
          return;
        }
        rememberEmail(email);
        go('/ui/verify?notice=sent');
        return 'navigating';
      });
    },

    verify(form) {
      const email = fillEmail(form);
      wireCodeField(form);
      wireResend(form, '/resend-otp');
      (email.value ? fieldInput(form, 'otp') : email).focus();
      onSubmit(form, async () => {
        const address = fieldInput(form, 'email').value.trim();
        const otp = codeValue(form);
        if (!validate(form, [['email', emailProblem(address)], ['otp', CODE_RE.test(otp) ? '' : CODE_MESSAGE]])) return;
        rememberEmail(address);
        const r = await api('POST', '/verify-otp', { email: address, otp });
        if (!r.ok) { showError(form, r.error); return; }
        go('/ui/login?notice=verified');
        return 'navigating';
      });
    },

    login(form) {
      const email = fillEmail(form);
      redirectIfLoggedIn();
      wireLoginCode(form);
      wirePasskeyLogin(form);
      (email.value ? fieldInput(form, 'password') : email).focus();
      onSubmit(form, async () => {
        const address = fieldInput(form, 'email').value.trim();
        const password = fieldInput(form, 'password').value;
        if (!validate(form, [['email', emailProblem(address)], ['password', passwordProblem(password, 'your password')]])) return;
        rememberEmail(address);
        const r = await api('POST', '/login', { email: address, password, transport: 'cookie' });
        if (!r.ok) {
          // With enumeration protection (the default) an address not verified yet answers
          // like a wrong password, so both offer the way to verify.
          const unverified = ['email_not_verified', 'invalid_credentials'].includes(r.error.code);
          const link = unverified ? { href: '/ui/verify', text: 'Not verified yet? Enter your verification code' } : undefined;
          showError(form, r.error, link);
          return;
        }
        if (r.data && r.data.mfa_required) return toSecondStep(r.data.mfa_token);
        // The cookie is HttpOnly: ask the server whether the browser kept it.
        const me = await api('GET', '/me');
        if (!me.ok) {
          setFormError('You are logged in, but this browser refused the session cookie. On plain http:// other than localhost, run the server with COOKIE_SECURE=false (see the README).');
          return;
        }
        go('/ui/account');
        return 'navigating';
      });
    },

    'login-code'(form) {
      const email = fillEmail(form);
      wireCodeField(form);
      wireResend(form, '/login/code', NOTICES['login-code-sent']);
      redirectIfLoggedIn();
      (email.value ? fieldInput(form, 'otp') : email).focus();
      onSubmit(form, async () => {
        const address = fieldInput(form, 'email').value.trim();
        const otp = codeValue(form);
        if (!validate(form, [['email', emailProblem(address)], ['otp', CODE_RE.test(otp) ? '' : CODE_MESSAGE]])) return;
        rememberEmail(address);
        const r = await api('POST', '/login/code/verify', { email: address, otp, transport: 'cookie' });
        if (!r.ok) { showError(form, r.error); return; }
        if (r.data && r.data.mfa_required) return toSecondStep(r.data.mfa_token);
        const me = await api('GET', '/me');
        if (!me.ok) {
          setFormError('You are logged in, but this browser refused the session cookie. On plain http:// other than localhost, run the server with COOKIE_SECURE=false (see the README).');
          return;
        }
        go('/ui/account');
        return 'navigating';
      });
    },

    'login-mfa'(form) {
      const token = sessionStorage.getItem(MFA_KEY);
      if (!token) { go('/ui/login?notice=expired'); return; }
      wirePasskeySecondStep(form, token);
      fieldInput(form, 'code').focus();
      onSubmit(form, async () => {
        const code = fieldInput(form, 'code').value.trim();
        if (!validate(form, [['code', code ? '' : 'Enter the code your app shows, or a recovery code.']])) return;
        const r = await api('POST', '/login/mfa', { mfa_token: token, code, transport: 'cookie' });
        if (!r.ok) {
          if (r.error.code === 'invalid_mfa_token') {
            sessionStorage.removeItem(MFA_KEY);
            showError(form, r.error, { href: '/ui/login', text: 'Log in again' });
            return;
          }
          setFieldError(form, 'code', r.error.message);
          return;
        }
        sessionStorage.removeItem(MFA_KEY);
        go('/ui/account');
        return 'navigating';
      });
    },

    forgot(form) {
      fillEmail(form);
      onSubmit(form, async () => {
        const email = fieldInput(form, 'email').value.trim();
        if (!validate(form, [['email', emailProblem(email)]])) return;
        const r = await api('POST', '/forgot-password', { email });
        if (!r.ok) { showError(form, r.error); return; }
        rememberEmail(email);
        go('/ui/reset?notice=reset-sent');
        return 'navigating';
      });
    },

    reset(form) {
      const email = fillEmail(form);
      wireCodeField(form);
      wireResend(form, '/forgot-password', NOTICES['reset-sent']);
      (email.value ? fieldInput(form, 'otp') : email).focus();
      onSubmit(form, async () => {
        const address = fieldInput(form, 'email').value.trim();
        const otp = codeValue(form);
        const password = fieldInput(form, 'new_password').value;
        if (!validate(form, [
          ['email', emailProblem(address)],
          ['otp', CODE_RE.test(otp) ? '' : CODE_MESSAGE],
          ['new_password', passwordProblem(password, 'a new password')],
        ])) return;
        rememberEmail(address);
        const r = await api('POST', '/reset-password', { email: address, otp, new_password: password });
        if (!r.ok) { showError(form, r.error); return; }
        go('/ui/login?notice=reset');
        return 'navigating';
      });
    },
  };

  // ---- account ------------------------------------------------------------------------------

  const dateFormat = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });
  const relative = typeof Intl.RelativeTimeFormat === 'function' ? new Intl.RelativeTimeFormat(undefined, { numeric: 'auto' }) : null;

  function describeTime(el, iso) {
    const when = new Date(iso);
    el.dateTime = iso;
    let text = dateFormat.format(when);
    if (relative) {
      const minutes = Math.round((when.getTime() - Date.now()) / 60000);
      const rel = Math.abs(minutes) >= 90
        ? relative.format(Math.round(minutes / 60), 'hour')
        : relative.format(minutes, 'minute');
      text += ' (' + rel + ')';
    }
    el.textContent = text;
  }

  // What each security event is called on the account page.
  const ACTIVITY = {
    signup: 'Account created',
    verified: 'Email address verified',
    login_succeeded: 'Logged in',
    login_failed: 'Failed login',
    reauth_failed: 'Wrong password or code given to confirm a change',
    reauth_throttled: 'Password or code to confirm a change refused: too many tries',
    lockout: 'Session ended after too many wrong passwords',
    logout: 'Logged out',
    logout_all: 'Logged out everywhere',
    session_ended: 'A session was ended',
    password_changed: 'Password changed',
    reset_requested: 'Password reset asked for',
    reset_completed: 'Password reset',
    reset_failed: 'Wrong password reset code',
    two_factor_enabled: 'Two-factor authentication turned on',
    two_factor_disabled: 'Two-factor authentication turned off',
    recovery_code_used: 'Recovery code used',
    account_deleted: 'Account deleted',
    email_change_requested: 'Change of email address asked for',
    email_changed: 'Email address changed',
    passkey_added: 'Passkey added',
    passkey_removed: 'Passkey removed',
  };
  const LOGIN_FAILURE = {
    bad_credentials: 'wrong password',
    unverified: 'address not verified yet',
    throttled: 'too many attempts',
    second_factor_failed: 'wrong second factor',
  };

  /** The account page's "Recent security activity": pages of `GET /me/events`. */
  function activitySection() {
    const list = byId('activity-list');
    const empty = byId('activity-empty');
    const more = byId('activity-more');
    let cursor = null;
    const item = (event) => {
      const li = document.createElement('li');
      li.dataset.kind = event.kind;
      const what = document.createElement('span');
      what.className = 'what';
      what.textContent = (ACTIVITY[event.kind] || event.kind)
        + (event.reason ? ': ' + (LOGIN_FAILURE[event.reason] || event.reason) : '');
      const when = document.createElement('time');
      describeTime(when, event.at);
      const where = document.createElement('span');
      where.className = 'where';
      where.textContent = [event.ip && 'from ' + event.ip, event.user_agent].filter(Boolean).join(' · ');
      li.append(what, when, where);
      return li;
    };
    const load = async () => {
      const r = await api('GET', '/me/events?limit=10' + (cursor ? '&cursor=' + encodeURIComponent(cursor) : ''));
      if (!r.ok) {
        empty.textContent = 'Your activity could not be loaded: ' + r.error.message;
        empty.hidden = false;
        return;
      }
      list.append(...r.data.events.map(item));
      cursor = r.data.next_cursor || null;
      more.hidden = !cursor;
      empty.textContent = 'No activity yet.';
      empty.hidden = list.children.length > 0;
    };
    more.addEventListener('click', () => busy(more, load));
    return {
      clear() { list.replaceChildren(); cursor = null; more.hidden = true; empty.hidden = true; },
      load,
    };
  }

  /** The account page's list of sessions: device, network, last use, and a button to end
   *  each one but this device's. */
  function sessionsSection() {
    const list = byId('sessions-list');
    const load = async () => {
      // The newest 100; more show as "100+".
      const r = await api('GET', '/sessions?limit=100');
      list.replaceChildren();
      byId('session-count').textContent = r.ok
        ? String(r.data.sessions.length) + (r.data.next_cursor ? '+' : '') : '–';
      if (!r.ok) return;
      for (const s of r.data.sessions) {
        const li = document.createElement('li');
        li.dataset.session = s.id;
        const what = document.createElement('span');
        what.className = 'device';
        what.textContent = (s.browser || 'Unknown browser') + ' on ' + (s.os || 'an unknown system');
        const meta = document.createElement('span');
        meta.className = 'meta';
        const used = document.createElement('time');
        describeTime(used, s.last_seen_at);
        meta.append((s.ip ? 'from ' + s.ip + ' · ' : '') + 'last used ', used);
        what.append(meta);
        li.append(what);
        if (s.current) {
          const mark = document.createElement('span');
          mark.className = 'this-device';
          mark.textContent = 'This device';
          li.append(mark);
        } else {
          const end = document.createElement('button');
          end.type = 'button';
          end.className = 'danger';
          end.textContent = 'End';
          end.dataset.busyLabel = 'Ending…';
          end.setAttribute('aria-label', 'End the session of ' + what.firstChild.textContent);
          end.addEventListener('click', () => busy(end, async () => {
            clearErrors(null);
            const d = await api('DELETE', '/sessions/' + encodeURIComponent(s.id));
            if (d.status === 401) { window.location.replace('/ui/login?notice=expired'); return 'navigating'; }
            if (!d.ok && d.status !== 404) { setFormError(d.error.message); return undefined; }
            showNotice('That session was ended.');
            await load();
            return undefined;
          }));
          li.append(end);
        }
        list.append(li);
      }
    };
    return { load, clear: () => list.replaceChildren() };
  }

  /** Asks for the second factor in `form` when the API says one is needed. */
  function needsSecondFactor(form, fieldId, error) {
    if (error.code !== 'second_factor_required' && error.code !== 'invalid_second_factor') return false;
    byId(fieldId).hidden = false;
    setFieldError(form, 'second_factor', error.message);
    fieldInput(form, 'second_factor').focus();
    return true;
  }

  /** The account page's password change and change of address. */
  function changeSections(sessions) {
    const passwordForm = byId('password-form');
    onSubmit(passwordForm, async () => {
      const current = fieldInput(passwordForm, 'current_password');
      const next = fieldInput(passwordForm, 'new_password');
      if (!validate(passwordForm, [
        ['current_password', passwordProblem(current.value, 'your current password')],
        ['new_password', passwordProblem(next.value, 'a new password')],
      ])) return undefined;
      const body = { current_password: current.value, new_password: next.value };
      const factor = fieldInput(passwordForm, 'second_factor').value.trim();
      if (factor) body.second_factor = factor;
      const r = await api('POST', '/change-password', body);
      current.value = '';
      if (r.ok) {
        next.value = '';
        fieldInput(passwordForm, 'second_factor').value = '';
        byId('password-code-field').hidden = true;
        showNotice('Your password was changed. Every other session was ended.');
        await sessions.load();
        return undefined;
      }
      if (r.status === 401) { window.location.replace('/ui/login?notice=expired'); return 'navigating'; }
      if (r.error.code === 'invalid_credentials') {
        setFieldError(passwordForm, 'current_password', 'That is not your current password. Nothing was changed.');
        current.focus();
        return undefined;
      }
      if (needsSecondFactor(passwordForm, 'password-code-field', r.error)) return undefined;
      showError(passwordForm, r.error);
      return undefined;
    });

    const emailForm = byId('email-form');
    const confirmForm = byId('email-confirm-form');
    let pending = '';
    onSubmit(emailForm, async () => {
      const address = fieldInput(emailForm, 'new_email');
      const password = fieldInput(emailForm, 'password');
      if (!validate(emailForm, [
        ['new_email', emailProblem(address.value.trim())],
        ['password', passwordProblem(password.value, 'your password')],
      ])) return undefined;
      const body = { new_email: address.value.trim(), password: password.value };
      const factor = fieldInput(emailForm, 'second_factor').value.trim();
      if (factor) body.second_factor = factor;
      const r = await api('POST', '/me/email', body);
      password.value = '';
      if (r.ok) {
        pending = body.new_email;
        fieldInput(emailForm, 'second_factor').value = '';
        byId('email-code-field').hidden = true;
        byId('email-confirm-hint').textContent = 'A code is on its way to ' + pending + '. Enter it here to finish.';
        confirmForm.hidden = false;
        fieldInput(confirmForm, 'otp').focus();
        return undefined;
      }
      if (r.status === 401) { window.location.replace('/ui/login?notice=expired'); return 'navigating'; }
      if (r.error.code === 'invalid_credentials') {
        setFieldError(emailForm, 'password', 'That is not your password. Nothing was changed.');
        password.focus();
        return undefined;
      }
      if (needsSecondFactor(emailForm, 'email-code-field', r.error)) return undefined;
      showError(emailForm, r.error);
      return undefined;
    });
    onSubmit(confirmForm, async () => {
      const code = fieldInput(confirmForm, 'otp');
      if (!validate(confirmForm, [['otp', /^\d{6}$/.test(code.value.trim()) ? '' : 'Enter the 6-digit code from the mail.']])) return undefined;
      const r = await api('POST', '/me/email/confirm', { new_email: pending, otp: code.value.trim() });
      if (r.ok) {
        code.value = '';
        confirmForm.hidden = true;
        fieldInput(emailForm, 'new_email').value = '';
        byId('account-email').textContent = r.data.user.email;
        showNotice('Your email address is now ' + r.data.user.email + '. Every other session was ended.');
        await sessions.load();
        return undefined;
      }
      if (r.status === 401) { window.location.replace('/ui/login?notice=expired'); return 'navigating'; }
      showError(confirmForm, r.error);
      return undefined;
    });
    return () => {
      [passwordForm, emailForm, confirmForm].forEach((f) => {
        f.querySelectorAll('input').forEach((i) => { i.value = ''; });
        clearErrors(f);
      });
      confirmForm.hidden = true;
    };
  }

  function account() {
    const activity = activitySection();
    const sessions = sessionsSection();
    const clearChanges = changeSections(sessions);
    const section = byId('account');
    const loading = byId('loading');
    const logout = byId('logout');
    const logoutAll = byId('logout-all');
    const deleteForm = byId('delete-form');
    const conceal = () => {
      section.hidden = true;
      loading.hidden = false;
      ['account-email', 'account-verified', 'session-created', 'session-expires'].forEach((id) => { byId(id).textContent = ''; });
      fieldInput(deleteForm, 'password').value = '';
      clearErrors(deleteForm);
      activity.clear();
      sessions.clear();
      clearChanges();
    };

    // On every showing, also from the back/forward cache: ask the server again.
    window.addEventListener('pageshow', async () => {
      conceal();
      clearErrors(null);
      const r = await api('GET', '/me');
      if (r.status === 401) { window.location.replace('/ui/login?notice=expired'); return; }
      if (!r.ok) { loading.hidden = true; setFormError('Your account could not be loaded: ' + r.error.message, { href: '/ui/account', text: 'Try again' }); return; }
      const { user, session } = r.data;
      byId('account-email').textContent = user.email;
      byId('account-verified').textContent = user.email_verified ? 'Verified' : 'Not verified';
      describeTime(byId('session-created'), session.created_at);
      describeTime(byId('session-expires'), session.expires_at);
      loading.hidden = true;
      section.hidden = false;
      await sessions.load();
      await activity.load();
    });
    // Nothing of the account stays in a page kept for the back button.
    window.addEventListener('pagehide', conceal);

    const wire = (button, path, notice, other) => {
      button.addEventListener('click', () => busy(button, async () => {
        clearErrors(null);
        const r = await api('POST', path);
        if (r.ok || r.status === 401) {
          go('/ui/login?notice=' + notice);
          return 'navigating';
        }
        setFormError(r.error.message);
        return undefined;
      }, [other]));
    };
    wire(logout, '/logout', 'logged-out', logoutAll);
    wire(logoutAll, '/logout-all', 'logged-out-all', logout);

    mfaSection();

    onSubmit(deleteForm, async () => {
      const input = fieldInput(deleteForm, 'password');
      const password = input.value;
      if (!validate(deleteForm, [['password', passwordProblem(password, 'your password')]])) return undefined;
      const factor = fieldInput(deleteForm, 'second_factor').value.trim();
      const r = await api('DELETE', '/me', factor ? { password, second_factor: factor } : { password });
      input.value = '';
      if (r.ok) {
        go('/ui/signup?notice=deleted');
        return 'navigating';
      }
      if (r.status === 401) {
        window.location.replace('/ui/login?notice=expired');
        return 'navigating';
      }
      if (r.error.code === 'invalid_credentials') {
        setFieldError(deleteForm, 'password', 'That is not your password. Nothing was deleted.');
        input.focus();
        return undefined;
      }
      if (r.error.code === 'second_factor_required' || r.error.code === 'invalid_second_factor') {
        byId('delete-code-field').hidden = false;
        setFieldError(deleteForm, 'second_factor', r.error.message);
        fieldInput(deleteForm, 'second_factor').focus();
        return undefined;
      }
      showError(deleteForm, r.error);
      return undefined;
    });
  }

  /** The account page's two-factor section: state, enrol (QR code), confirm, codes, turn off. */
  function mfaSection() {
    const state = byId('mfa-state');
    const enrol = byId('mfa-enrol-form');
    const confirm = byId('mfa-confirm-form');
    const manage = byId('mfa-manage-form');
    const codes = byId('mfa-codes');
    const showCodes = (list) => {
      const ol = byId('mfa-codes-list');
      ol.replaceChildren(...list.map((c) => { const li = document.createElement('li'); li.textContent = c; return li; }));
      codes.hidden = false;
    };
    const refresh = async () => {
      const r = await api('GET', '/me/mfa');
      if (!r.ok) { state.textContent = 'The state of two-factor authentication could not be loaded.'; return; }
      const on = r.data.totp_enabled;
      state.textContent = on
        ? `On: logging in asks for a code from your authenticator app. ${r.data.recovery_codes_left} recovery codes left.`
        : 'Off: your password alone logs you in.';
      enrol.hidden = on || !confirm.hidden;
      manage.hidden = !on;
      byId('delete-code-field').hidden = !on;
    };
    window.addEventListener('pageshow', () => { codes.hidden = true; confirm.hidden = true; refresh(); });

    onSubmit(enrol, async () => {
      const input = fieldInput(enrol, 'password');
      const password = input.value;
      if (!validate(enrol, [['password', passwordProblem(password, 'your password')]])) return;
      const r = await api('POST', '/me/mfa/totp', { password });
      input.value = '';
      if (!r.ok) { showError(enrol, r.error); return; }
      // The SVG is parsed as a document and adopted, never put in as HTML.
      const svg = new DOMParser().parseFromString(r.data.qr_svg, 'image/svg+xml').documentElement;
      byId('mfa-qr').replaceChildren(document.importNode(svg, true));
      byId('mfa-secret').textContent = r.data.secret;
      enrol.hidden = true;
      confirm.hidden = false;
      fieldInput(confirm, 'code').focus();
    });

    onSubmit(confirm, async () => {
      const code = fieldInput(confirm, 'code').value.trim();
      if (!validate(confirm, [['code', CODE_RE.test(code) ? '' : 'The code is the 6 digits your app shows.']])) return;
      const r = await api('POST', '/me/mfa/totp/confirm', { code });
      if (!r.ok) { setFieldError(confirm, 'code', r.error.message); return; }
      fieldInput(confirm, 'code').value = '';
      byId('mfa-secret').textContent = '';
      byId('mfa-qr').replaceChildren();
      confirm.hidden = true;
      showCodes(r.data.recovery_codes);
      await refresh();
    });

    const manageValues = () => {
      const password = fieldInput(manage, 'password').value;
      const code = fieldInput(manage, 'code').value.trim();
      const ok = validate(manage, [
        ['password', passwordProblem(password, 'your password')],
        ['code', code ? '' : 'Enter the code your app shows, or a recovery code.'],
      ]);
      return ok ? { password, code } : null;
    };
    const manageFailed = (r) => {
      if (r.error.code === 'invalid_credentials') setFieldError(manage, 'password', 'That is not your password.');
      else if (r.error.code === 'invalid_second_factor') setFieldError(manage, 'code', r.error.message);
      else showError(manage, r.error);
    };
    onSubmit(manage, async () => {
      const body = manageValues();
      if (!body) return;
      const r = await api('POST', '/me/mfa/recovery-codes', body);
      if (!r.ok) { manageFailed(r); return; }
      fieldInput(manage, 'password').value = '';
      fieldInput(manage, 'code').value = '';
      showCodes(r.data.recovery_codes);
      await refresh();
    });
    const disable = byId('mfa-disable');
    disable.addEventListener('click', () => busy(disable, async () => {
      clearErrors(manage);
      const body = manageValues();
      if (!body) return undefined;
      const r = await api('DELETE', '/me/mfa/totp', body);
      if (!r.ok) { manageFailed(r); return undefined; }
      fieldInput(manage, 'password').value = '';
      fieldInput(manage, 'code').value = '';
      codes.hidden = true;
      showNotice('Two-factor authentication is off. Every other session was ended.');
      await refresh();
      return undefined;
    }, [byId('mfa-regenerate')]));
  }

  // ---- passkeys (WebAuthn) -----------------------------------------------------------------

  const b64u = {
    decode(s) {
      const bin = atob(s.replace(/-/g, '+').replace(/_/g, '/') + '==='.slice((s.length + 3) % 4));
      return Uint8Array.from(bin, (c) => c.charCodeAt(0)).buffer;
    },
    encode(buf) {
      let bin = '';
      new Uint8Array(buf).forEach((b) => { bin += String.fromCharCode(b); });
      return btoa(bin).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
    },
  };
  const passkeysSupported = () => typeof window.PublicKeyCredential === 'function' && !!navigator.credentials;

  /** The server's options with their binary fields as buffers. */
  function creationOptions(o) {
    return {
      ...o,
      challenge: b64u.decode(o.challenge),
      user: { ...o.user, id: b64u.decode(o.user.id) },
      excludeCredentials: (o.excludeCredentials || []).map((c) => ({ ...c, id: b64u.decode(c.id) })),
    };
  }
  function requestOptions(o) {
    return {
      ...o,
      challenge: b64u.decode(o.challenge),
      allowCredentials: (o.allowCredentials || []).map((c) => ({ ...c, id: b64u.decode(c.id) })),
    };
  }
  /** A credential as JSON, binary fields base64url. */
  function credentialJson(cred) {
    const r = cred.response;
    const response = { clientDataJSON: b64u.encode(r.clientDataJSON) };
    if (r.attestationObject) {
      response.attestationObject = b64u.encode(r.attestationObject);
    } else {
      response.authenticatorData = b64u.encode(r.authenticatorData);
      response.signature = b64u.encode(r.signature);
      if (r.userHandle) response.userHandle = b64u.encode(r.userHandle);
    }
    return {
      id: cred.id,
      rawId: b64u.encode(cred.rawId),
      type: cred.type,
      response,
      extensions: cred.getClientExtensionResults ? cred.getClientExtensionResults() : {},
    };
  }
  const PASSKEY_CANCELLED = { code: 'passkey_cancelled', message: 'No passkey was used (cancelled, timed out, or none on this device). Try again.' };
  async function askPasskey(options) {
    try {
      const cred = await navigator.credentials.get({ publicKey: requestOptions(options) });
      return cred ? credentialJson(cred) : null;
    } catch {
      return null;
    }
  }

  function wirePasskeyLogin(form) {
    const button = byId('passkey-login');
    if (!button || !passkeysSupported()) return;
    button.hidden = false;
    button.addEventListener('click', () => busy(button, async () => {
      clearErrors(form);
      const start = await api('POST', '/login/passkey/options', {});
      if (!start.ok) { showError(form, start.error); return undefined; }
      const credential = await askPasskey(start.data.options);
      if (!credential) { showError(form, PASSKEY_CANCELLED); return undefined; }
      const r = await api('POST', '/login/passkey', { ceremony_id: start.data.ceremony_id, credential, transport: 'cookie' });
      if (!r.ok) { showError(form, r.error); return undefined; }
      go('/ui/account');
      return 'navigating';
    }));
  }

  function wirePasskeySecondStep(form, token) {
    const button = byId('passkey-second');
    if (!button || !passkeysSupported()) return;
    button.hidden = false;
    button.addEventListener('click', () => busy(button, async () => {
      clearErrors(form);
      const start = await api('POST', '/login/mfa/passkey/options', { mfa_token: token });
      if (!start.ok) { showError(form, start.error, start.error.code === 'invalid_mfa_token' ? { href: '/ui/login', text: 'Log in again' } : undefined); return undefined; }
      const credential = await askPasskey(start.data.options);
      if (!credential) { showError(form, PASSKEY_CANCELLED); return undefined; }
      const r = await api('POST', '/login/mfa/passkey', { mfa_token: token, ceremony_id: start.data.ceremony_id, credential, transport: 'cookie' });
      if (!r.ok) { showError(form, r.error); return undefined; }
      sessionStorage.removeItem(MFA_KEY);
      go('/ui/account');
      return 'navigating';
    }));
  }

  /** The account page's passkey section: list, add, rename, remove. */
  function passkeySection() {
    const form = byId('passkey-form');
    const list = byId('passkey-list');
    const state = byId('passkey-state');
    if (!form) return;
    const reauth = () => {
      const password = fieldInput(form, 'password').value;
      const code = fieldInput(form, 'second_factor').value.trim();
      if (!validate(form, [['password', passwordProblem(password, 'your password')]])) return null;
      return code ? { password, second_factor: code } : { password };
    };
    const failed = (r) => {
      if (r.error.code === 'invalid_credentials') setFieldError(form, 'password', 'That is not your password.');
      else if (['second_factor_required', 'invalid_second_factor'].includes(r.error.code)) {
        byId('passkey-code-field').hidden = false;
        setFieldError(form, 'second_factor', r.error.message);
      } else showError(form, r.error);
    };
    const refresh = async () => {
      const r = await api('GET', '/me/passkeys');
      // Removing the passkey that opened this session ends the session with it.
      if (r.status === 401) { window.location.replace('/ui/login?notice=expired'); return; }
      if (!r.ok) {
        section().hidden = r.status === 404;
        return;
      }
      const items = r.data.passkeys.map((p) => {
        const li = document.createElement('li');
        li.className = 'passkey';
        const name = document.createElement('strong');
        name.className = 'passkey-name';
        name.textContent = p.name;
        const when = document.createElement('span');
        when.className = 'hint';
        when.textContent = ` added ${dateFormat.format(new Date(p.created_at))}`
          + (p.last_used_at ? `, last used ${dateFormat.format(new Date(p.last_used_at))}` : ', not used yet');
        const rename = document.createElement('button');
        rename.type = 'button';
        rename.textContent = 'Rename';
        rename.dataset.busyLabel = 'Renaming…';
        rename.addEventListener('click', () => busy(rename, async () => {
          clearErrors(form);
          const newName = fieldInput(form, 'name').value.trim();
          if (!validate(form, [['name', newName ? '' : 'Type the new name above.']])) return undefined;
          const res = await api('PATCH', `/me/passkeys/${encodeURIComponent(p.id)}`, { name: newName });
          if (!res.ok) { showError(form, res.error); return undefined; }
          fieldInput(form, 'name').value = '';
          await refresh();
          return undefined;
        }));
        const remove = document.createElement('button');
        remove.type = 'button';
        remove.className = 'danger';
        remove.textContent = 'Remove';
        remove.dataset.busyLabel = 'Removing…';
        remove.addEventListener('click', () => busy(remove, async () => {
          clearErrors(form);
          const body = reauth();
          if (!body) return undefined;
          const res = await api('DELETE', `/me/passkeys/${encodeURIComponent(p.id)}`, body);
          if (!res.ok) { failed(res); return undefined; }
          fieldInput(form, 'password').value = '';
          showNotice(`The passkey "${p.name}" was removed.`);
          await refresh();
          return undefined;
        }));
        li.append(name, when, ' ', rename, ' ', remove);
        return li;
      });
      list.replaceChildren(...items);
      state.textContent = items.length
        ? `${items.length} passkey${items.length === 1 ? '' : 's'}: each signs you in without a password.`
        : 'No passkey yet. A passkey signs you in without a password, with your device\'s screen lock or security key.';
    };
    const section = () => form.closest('section');
    if (!passkeysSupported()) {
      byId('passkey-add').disabled = true;
      state.textContent = 'This browser cannot use passkeys.';
    }
    window.addEventListener('pageshow', refresh);
    onSubmit(form, async () => {
      const name = fieldInput(form, 'name').value.trim();
      if (!validate(form, [['name', name ? '' : 'Give the passkey a name, say "laptop".']])) return;
      const body = reauth();
      if (!body) return;
      const start = await api('POST', '/me/passkeys/options', body);
      fieldInput(form, 'password').value = '';
      fieldInput(form, 'second_factor').value = '';
      if (!start.ok) { failed(start); return; }
      let cred;
      try {
        cred = await navigator.credentials.create({ publicKey: creationOptions(start.data.options) });
      } catch {
        cred = null;
      }
      if (!cred) { showError(form, PASSKEY_CANCELLED); return; }
      const r = await api('POST', '/me/passkeys', { ceremony_id: start.data.ceremony_id, name, credential: credentialJson(cred) });
      if (!r.ok) { showError(form, r.error); return; }
      fieldInput(form, 'name').value = '';
      showNotice(`The passkey "${r.data.name}" was added.`);
      await refresh();
    });
  }

  wireRevealButtons();
  if (page === 'account') {
    account();
    passkeySection();
  } else if (pages[page]) {
    pages[page](byId('form'));
  }
})();
