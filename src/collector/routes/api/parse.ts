import type { z } from 'zod';
import { MamoriError } from '../../../shared';

/**
 * The first field of `input` that parsing dropped (a key the schema does not know), as its path;
 * null when none was. Compared after parsing, so every object at any depth is checked against
 * exactly the schema that accepted it.
 */
export function droppedField(input: unknown, output: unknown, path: (string | number)[] = []): (string | number)[] | null {
  if (Array.isArray(input) && Array.isArray(output)) {
    for (let i = 0; i < input.length && i < output.length; i++) {
      const found = droppedField(input[i], output[i], [...path, i]);
      if (found) return found;
    }
    return null;
  }
  if (!input || typeof input !== 'object' || !output || typeof output !== 'object' || Array.isArray(output)) return null;
  for (const [key, value] of Object.entries(input)) {
    if (!Object.hasOwn(output, key)) return [...path, key];
    const found = droppedField(value, (output as Record<string, unknown>)[key], [...path, key]);
    if (found) return found;
  }
  return null;
}

/**
 * Parses with a schema. A refusal is a 400 naming the field; so is a field the schema does not
 * know, at any depth (it is refused by name, never silently dropped).
 * @throws MamoriError validation_failed.
 */
export function parse<T>(schema: z.ZodType<T>, value: unknown, what = 'body'): T {
  const result = schema.safeParse(value);
  if (!result.success) {
    const issue = result.error.issues[0];
    throw new MamoriError('validation_failed', `${what}${issue?.path.length ? `.${issue.path.join('.')}` : ''}: ${issue?.message ?? 'invalid'}`);
  }
  const dropped = droppedField(value, result.data);
  if (dropped) throw new MamoriError('validation_failed', `${what}.${dropped.join('.')}: unknown field ${JSON.stringify(String(dropped[dropped.length - 1]))}`);
  return result.data;
}
