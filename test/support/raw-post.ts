import { request } from 'node:http';

/**
 * Posts with node:http, which (unlike fetch) still reads the answer when the server refuses an
 * oversized body before it has all been sent.
 */
export function postRaw(url: string, token: string, body: string, contentType = 'application/json', options: { chunked?: boolean } = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    // Chunked: no Content-Length, the body goes as Transfer-Encoding: chunked in 64 KiB pieces.
    const length = options.chunked ? {} : { 'content-length': Buffer.byteLength(body) };
    const req = request(url, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': contentType, ...length } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
    });
    req.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code !== 'EPIPE' && error.code !== 'ECONNRESET') reject(error);
    });
    if (options.chunked) {
      for (let i = 0; i < body.length; i += 65536) req.write(body.slice(i, i + 65536));
      req.end();
    } else req.end(body);
  });
}
