const LOOPBACK = new Set(['localhost', '127.0.0.1', '[::1]']);

/** The public URL, parsed once per value (it is checked against every gateway request). */
let parsedPublic: { text: string; url: URL } | undefined;
export function publicUrlOf(publicUrl: string): URL {
  if (parsedPublic?.text !== publicUrl) parsedPublic = { text: publicUrl, url: new URL(publicUrl) };
  return parsedPublic.url;
}

function hostParts(host: string): { name: string; port: string } | undefined {
  const match = /^(\[[0-9a-f:.]+\]|[a-z0-9.-]+)(?::(\d{1,5}))?$/i.exec(host.trim());
  if (!match) return undefined;
  return { name: match[1]!.toLowerCase(), port: match[2] ?? '' };
}

/**
 * DNS-rebinding protection (MCP transports, "Security Warning"; MCP security best practices): the
 * upstream behind the gateway can no longer see who called it, so the gateway checks `Host` and, when a
 * browser sends one, `Origin`. Accepted: the public URL's host, any loopback name on the same port when
 * the public URL is itself loopback, and the configured extras.
 */
export function hostAllowed(hostHeader: string | undefined, publicUrl: string, extra: readonly string[]): boolean {
  if (!hostHeader) return false;
  const host = hostParts(hostHeader);
  if (!host) return false;
  const pub = publicUrlOf(publicUrl);
  const pubPort = pub.port || (pub.protocol === 'https:' ? '443' : '80');
  const port = host.port || (pub.protocol === 'https:' ? '443' : '80');
  if (host.name === pub.hostname.toLowerCase() && port === pubPort) return true;
  if (LOOPBACK.has(pub.hostname.toLowerCase()) && LOOPBACK.has(host.name) && port === pubPort) return true;
  return extra.some((e) => e.toLowerCase() === hostHeader.trim().toLowerCase());
}

export function originAllowed(origin: string | undefined, publicUrl: string, extra: readonly string[]): boolean {
  if (origin === undefined) return true;
  let parsed: URL;
  try {
    parsed = new URL(origin);
  } catch {
    return false;
  }
  const pub = publicUrlOf(publicUrl);
  if (parsed.origin === pub.origin) return true;
  if (LOOPBACK.has(pub.hostname.toLowerCase()) && LOOPBACK.has(parsed.hostname.toLowerCase()) && parsed.port === pub.port && parsed.protocol === pub.protocol) return true;
  return extra.includes(parsed.origin);
}
