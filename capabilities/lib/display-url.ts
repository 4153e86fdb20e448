// URLs as status, conditions, events, logs and admission messages may show them. Image URLs are
// often presigned (S3, GCS, Azure SAS: the signature is in the query string) or carry a user and
// password; whoever can read a PhysicalHost's events must not get a working download link or a
// login from them. The scheme, host and path stay (they say which image), the query and the
// userinfo become "…". Boot service media tokens, in the path, are withoutToken()'s concern
// (physical-host/boot-session.ts).

const HIDDEN = "…";

/** A URL for display: scheme://host[:port]/path, with any userinfo, query and fragment hidden. */
export function displayURL(value: string): string {
  try {
    const url = new URL(value);
    if (!url.host) throw new Error("no host");
    const userinfo = url.username || url.password ? `${HIDDEN}@` : "";
    const query = url.search ? `?${HIDDEN}` : "";
    const fragment = url.hash ? `#${HIDDEN}` : "";
    return `${url.protocol}//${userinfo}${url.host}${url.pathname}${query}${fragment}`;
  } catch {
    // Not a URL: hide what could be a userinfo (up to the last "@", since a password may hold
    // "@" or "/") and everything from a "?" or "#".
    return value
      .replace(/^([^:/?#]*:)?\/\/.*@/, `$1//${HIDDEN}@`)
      .replace(/\?.*$/s, `?${HIDDEN}`)
      .replace(/#.*$/s, `#${HIDDEN}`);
  }
}

/** A text with every http(s) URL in it shown as displayURL shows it. */
export function displayURLs(text: string): string {
  return text.replace(/\bhttps?:\/\/[^\s"'<>]+/gi, url => displayURL(url));
}
