/**
 * A small JSON-Schema subset, interpreted directly. Client and server validate with the same
 * schemas and the same code, so they cannot drift; Fastify uses it as its validator compiler.
 *
 * Beyond standard keywords it knows `discriminator` + `variants`: an object whose `discriminator`
 * property picks the schema of the rest (a tagged union, e.g. authentication factors).
 */
export interface Schema {
  type?: 'object' | 'string' | 'integer' | 'boolean' | 'array';
  properties?: Record<string, Schema>;
  required?: readonly string[];
  /** Defaults to false: a field the protocol does not name is an error (typos surface at once). */
  additionalProperties?: boolean;
  minimum?: number;
  maximum?: number;
  minLength?: number;
  maxLength?: number;
  pattern?: string;
  enum?: readonly (string | number | boolean)[];
  items?: Schema;
  minItems?: number;
  maxItems?: number;
  discriminator?: string;
  variants?: Record<string, Schema>;
  description?: string;
}

export type ValidationResult<T> =
  { ok: true; value: T } | { ok: false; field: string; message: string };

const patternCache = new Map<string, RegExp>();

function regex(pattern: string): RegExp {
  let re = patternCache.get(pattern);
  if (!re) {
    re = new RegExp(pattern);
    patternCache.set(pattern, re);
  }
  return re;
}

function typeName(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  if (typeof value === 'number' && Number.isInteger(value)) return 'integer';
  return typeof value;
}

function join(path: string, key: string | number): string {
  if (typeof key === 'number') return `${path}[${key}]`;
  return path ? `${path}.${key}` : key;
}

function fail(field: string, message: string): { field: string; message: string } {
  return { field, message: `${field || 'body'} ${message}` };
}

function check(
  schema: Schema,
  value: unknown,
  path: string,
): { field: string; message: string } | null {
  if (schema.type) {
    const actual = typeName(value);
    if (schema.type !== actual) {
      const shown = actual === 'number' ? 'a non-integer number' : actual;
      return fail(path, `must be ${article(schema.type)}, got ${shown}`);
    }
  }
  if (schema.enum && !schema.enum.includes(value as string)) {
    return fail(path, `must be one of ${schema.enum.map((v) => JSON.stringify(v)).join(', ')}`);
  }
  if (typeof value === 'number') {
    if (schema.minimum !== undefined && value < schema.minimum) {
      return fail(path, `must be at least ${schema.minimum}`);
    }
    if (schema.maximum !== undefined && value > schema.maximum) {
      return fail(path, `must be at most ${schema.maximum}`);
    }
  }
  if (typeof value === 'string') {
    if (schema.minLength !== undefined && value.length < schema.minLength) {
      return fail(path, `must be at least ${schema.minLength} characters`);
    }
    if (schema.maxLength !== undefined && value.length > schema.maxLength) {
      return fail(path, `must be at most ${schema.maxLength} characters`);
    }
    if (schema.pattern !== undefined && !regex(schema.pattern).test(value)) {
      return fail(path, `has an invalid format`);
    }
  }
  if (Array.isArray(value)) {
    if (schema.minItems !== undefined && value.length < schema.minItems) {
      return fail(path, `must have at least ${schema.minItems} item(s)`);
    }
    if (schema.maxItems !== undefined && value.length > schema.maxItems) {
      return fail(path, `must have at most ${schema.maxItems} item(s)`);
    }
    if (schema.items) {
      for (let i = 0; i < value.length; i++) {
        const err = check(schema.items, value[i], join(path, i));
        if (err) return err;
      }
    }
  }
  if (typeName(value) === 'object') {
    return checkObject(schema, value as Record<string, unknown>, path);
  }
  return null;
}

function checkObject(
  schema: Schema,
  obj: Record<string, unknown>,
  path: string,
): { field: string; message: string } | null {
  let properties = schema.properties ?? {};
  let required = schema.required ?? [];
  if (schema.discriminator && schema.variants) {
    const key = schema.discriminator;
    const tag = obj[key];
    const variant = typeof tag === 'string' ? own(schema.variants, tag) : undefined;
    if (!variant) {
      const names = Object.keys(schema.variants).map((v) => JSON.stringify(v));
      return fail(join(path, key), `must be one of ${names.join(', ')}`);
    }
    properties = { ...properties, ...variant.properties };
    required = [...required, ...(variant.required ?? [])];
  }
  for (const name of required) {
    if (obj[name] === undefined) return fail(join(path, name), 'is required');
  }
  for (const name of Object.keys(obj)) {
    // Own names only: `constructor` or `toString` are not fields because every object has them.
    const sub = own(properties, name);
    if (!sub) {
      if (schema.additionalProperties === true) continue;
      return fail(join(path, name), 'is not a known field');
    }
    if (obj[name] === undefined) continue;
    const err = check(sub, obj[name], join(path, name));
    if (err) return err;
  }
  return null;
}

const hasOwn = Object.prototype.hasOwnProperty;
function own<T>(table: Record<string, T>, name: string): T | undefined {
  return hasOwn.call(table, name) ? table[name] : undefined;
}

function article(type: string): string {
  return (/^[aeiou]/.test(type) ? 'an ' : 'a ') + type;
}

/**
 * Validates `value` against `schema`. On failure, `field` is the dotted path of the first
 * offending field (`card.payload`, `factors[0].proof`) and `message` names it.
 *
 * @example
 * const r = validate(OrderRequestSchema, body)
 * if (!r.ok) reply.code(400).send(errorBody('invalid_request', r.message))
 */
export function validate<T>(schema: Schema, value: unknown): ValidationResult<T> {
  const err = check(schema, value, '');
  return err
    ? { ok: false, field: err.field, message: err.message }
    : { ok: true, value: value as T };
}
