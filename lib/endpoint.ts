/**
 * The S3 endpoint as users give it (`-e`), checked and turned into a URL. Kept apart from the S3
 * store so that checking flags (and --help) does not load the AWS SDK.
 */

const URL_WITH_SCHEME = /^[A-Za-z][A-Za-z0-9+.-]*:\/\//;
const BARE_HOST = /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*|\[[0-9A-Fa-f:.]+\])(?::(\d{1,5}))?\/?$/;

/** A URL as it may be shown: any `user:password@` replaced, so a refusal never echoes a secret. */
export function withoutCredentials(url: string): string {
  return url.replace(/^([A-Za-z][A-Za-z0-9+.-]*:\/\/)[^/?#]*@/, '$1***@');
}

/**
 * Endpoint as configured -> URL for the SDK. A bare host ("web.s3.wisc.edu",
 * "host:port") means HTTPS; an http(s) URL is kept as given minus trailing slashes.
 */
export function endpointUrl(endpoint: string): string {
  const invalid = (why: string) =>
    new Error(`Invalid S3 endpoint ${JSON.stringify(withoutCredentials(endpoint))}: ${why}`);
  if (endpoint === '') throw invalid('it is empty');
  if (/\s/.test(endpoint)) throw invalid('it contains whitespace');

  if (URL_WITH_SCHEME.test(endpoint)) {
    let url: URL;
    try {
      url = new URL(endpoint);
    } catch {
      throw invalid('not a valid URL');
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw invalid(`scheme must be http or https, not ${url.protocol.slice(0, -1)}`);
    }
    // Credentials belong in S3Settings; in the URL they would end up in logs.
    if (url.username !== '' || url.password !== '') throw invalid('it must not contain credentials');
    if (url.search !== '' || url.hash !== '') throw invalid('it must not have a query or fragment');
    return endpoint.replace(/\/+$/, '');
  }

  const bare = BARE_HOST.exec(endpoint);
  if (bare === null) {
    throw invalid('expected a host name (web.s3.wisc.edu), host:port, or an http(s):// URL');
  }
  const port = bare[1];
  if (port !== undefined && (Number(port) < 1 || Number(port) > 65535)) {
    throw invalid(`port ${port} is out of range`);
  }
  return `https://${endpoint.replace(/\/$/, '')}`;
}
