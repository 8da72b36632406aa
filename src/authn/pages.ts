/** Server-rendered sign-in and consent pages: semantic HTML, labelled fields, no scripts, no external assets. */

export function escapeHtml(value: string): string {
  return value.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

const STYLE = `body{font:16px/1.5 system-ui,sans-serif;max-width:28rem;margin:3rem auto;padding:0 1rem;color:#111}
label{display:block;margin-top:1rem;font-weight:600}input{width:100%;padding:.5rem;font-size:1rem;box-sizing:border-box}
button{margin-top:1.5rem;padding:.6rem 1.2rem;font-size:1rem}.error{color:#a00;border-left:4px solid #a00;padding-left:.5rem}
ul{padding-left:1.2rem}`;

function layout(title: string, body: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><title>${escapeHtml(title)} · Mandate</title><style>${STYLE}</style></head><body><main>${body}</main></body></html>`;
}

export function loginPage(input: { action: string; csrf: string; clientName: string; email?: string; error?: string; needTotp?: boolean }): string {
  return layout(
    'Sign in',
    `<h1>Sign in to Mandate</h1>
<p><strong>${escapeHtml(input.clientName)}</strong> asks to act for you.</p>
${input.error ? `<p class="error" role="alert">${escapeHtml(input.error)}</p>` : ''}
<form method="post" action="${escapeHtml(input.action)}">
<input type="hidden" name="csrf" value="${escapeHtml(input.csrf)}">
<label for="email">Email</label><input id="email" name="email" type="email" autocomplete="username" required value="${escapeHtml(input.email ?? '')}">
<label for="password">Password</label><input id="password" name="password" type="password" autocomplete="current-password" required>
<label for="totp">Authenticator code${input.needTotp ? '' : ' (if enrolled)'}</label><input id="totp" name="totp" inputmode="numeric" pattern="[0-9]{6}" autocomplete="one-time-code"${input.needTotp ? ' required' : ''}>
<button type="submit">Sign in</button>
</form>`,
  );
}

/**
 * Plain words for scopes whose consent matters beyond the resource they name: the user must know that
 * `mandate:delegations` lets the client see and revoke what they granted to agents.
 */
const SCOPE_MEANING: Record<string, string> = {
  'mandate:delegations': 'see and revoke the access you have given to agents',
};

export function consentPage(input: { action: string; csrf: string; clientName: string; scopes: string[]; resource: string; days: number }): string {
  return layout(
    'Allow access',
    `<h1>Allow ${escapeHtml(input.clientName)} to act for you?</h1>
<p>It will be able to use these permissions at <code>${escapeHtml(input.resource)}</code> for ${input.days} days, or until you revoke them:</p>
<ul>${input.scopes.map((s) => `<li><code>${escapeHtml(s)}</code>${Object.hasOwn(SCOPE_MEANING, s) ? `: ${escapeHtml(SCOPE_MEANING[s]!)}` : ''}</li>`).join('') || '<li>(no permissions beyond signing you in)</li>'}</ul>
<form method="post" action="${escapeHtml(input.action)}">
<input type="hidden" name="csrf" value="${escapeHtml(input.csrf)}">
<button type="submit" name="decision" value="allow">Allow</button>
<button type="submit" name="decision" value="deny">Deny</button>
</form>`,
  );
}
