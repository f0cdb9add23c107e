/**
 * Records keyed by what callers choose: flag keys, tenant ids. A key may be `valueOf`, `constructor` or `__proto__`,
 * so reads take own properties only (never what the prototype has), and writes define own properties (an assignment
 * to `__proto__` would replace the record's prototype instead of adding a key).
 *
 * @internal
 */

/** The value `record` itself holds under `key`, if any. @internal */
export const own = <A>(record: Readonly<Record<string, A>> | undefined, key: string): A | undefined =>
  record !== undefined && Object.hasOwn(record, key) ? record[key] : undefined

/** Sets `key` of `record` as an own, enumerable property, whatever the key. @internal */
export const setOwn = <A>(record: Record<string, A>, key: string, value: A): void => {
  Object.defineProperty(record, key, { value, enumerable: true, writable: true, configurable: true })
}
