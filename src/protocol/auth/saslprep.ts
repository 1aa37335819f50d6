/**
 * SASLprep (RFC 4013) of a password, as PostgreSQL applies it before SCRAM hashing (src/common/saslprep.c).
 *
 * PostgreSQL's rules, which decide the bytes that get hashed and so must be matched exactly for common cases:
 * - A pure-ASCII password is used unchanged (even with control characters).
 * - Otherwise map (RFC 3454 C.1.2 spaces → U+0020, B.1 → nothing), NFKC-normalise, and if a prohibited
 *   character remains (RFC 4013 §2.3), use the ORIGINAL password instead of failing.
 * Not reproduced: the unassigned-code-point and bidirectional checks (both also fall back to the original in
 * PostgreSQL), and NFKC here follows the runtime's Unicode version rather than 3.2. Passwords affected by these
 * differences are exotic; the proxy then fails authentication rather than accepting a wrong password.
 */

/** RFC 3454 Table C.1.2, non-ASCII space characters. */
const NON_ASCII_SPACE = /[\u00A0\u1680\u2000-\u200B\u202F\u205F\u3000]/g;
/** RFC 3454 Table B.1, commonly mapped to nothing. */
// biome-ignore lint/suspicious/noMisleadingCharacterClass: RFC 3454 lists combining marks as single code points to remove
const MAPPED_TO_NOTHING = /[\u00AD\u034F\u1806\u180B-\u180D\u200B-\u200D\u2060\uFE00-\uFE0F\uFEFF]/g;
/**
 * RFC 4013 §2.3 prohibited output: C.1.2 spaces, C.2.1/C.2.2 controls, C.3 private use, C.4 non-characters,
 * C.5 surrogates (lone ones), C.6 inappropriate for plain text, C.7 ideographic description, C.8 display
 * properties, C.9 tagging.
 */
const PROHIBITED =
  // biome-ignore lint/suspicious/noMisleadingCharacterClass: RFC 4013 prohibits these code points one by one
  /[\u0000-\u001F\u007F-\u009F\u00A0\u0340\u0341\u06DD\u070F\u1680\u180E\u2000-\u200F\u2028-\u202F\u205F-\u2063\u206A-\u206F\u2FF0-\u2FFB\u3000\uD800-\uDFFF\uE000-\uF8FF\uFDD0-\uFDEF\uFEFF\uFFF9-\uFFFF\u{1D173}-\u{1D17A}\u{1FFFE}\u{1FFFF}\u{2FFFE}\u{2FFFF}\u{3FFFE}\u{3FFFF}\u{4FFFE}\u{4FFFF}\u{5FFFE}\u{5FFFF}\u{6FFFE}\u{6FFFF}\u{7FFFE}\u{7FFFF}\u{8FFFE}\u{8FFFF}\u{9FFFE}\u{9FFFF}\u{AFFFE}\u{AFFFF}\u{BFFFE}\u{BFFFF}\u{CFFFE}\u{CFFFF}\u{DFFFE}\u{DFFFF}\u{E0001}\u{E0020}-\u{E007F}\u{EFFFE}-\u{10FFFF}]/u;

// eslint-disable-next-line no-control-regex
const ASCII = /^[\u0000-\u007F]*$/;

export function saslprep(password: string): string {
  if (ASCII.test(password)) return password;
  const prepared = password.replace(NON_ASCII_SPACE, ' ').replace(MAPPED_TO_NOTHING, '').normalize('NFKC');
  return PROHIBITED.test(prepared) ? password : prepared;
}
