import { readFileSync } from 'node:fs';
import { parseDocument } from 'yaml';
import type { ZodIssue, ZodType, ZodTypeDef } from 'zod';

/** One thing wrong with an input, and where: `units[2].maxRpm: expected a positive number`. */
export interface InputProblem {
  path: string;
  message: string;
}

/** An input from outside (a file, an event, a payload) that failed validation. */
export class InputValidationError extends Error {
  override readonly name = 'InputValidationError';
  constructor(
    readonly source: string,
    readonly problems: InputProblem[],
    options?: { cause?: unknown },
  ) {
    super(`${source}: ${problems.length} problem${problems.length === 1 ? '' : 's'}\n${problems.map((p) => `  - ${p.path}: ${p.message}`).join('\n')}`, options);
  }
}

export function formatPath(path: ReadonlyArray<string | number>): string {
  if (path.length === 0) return '(root)';
  return path.reduce<string>((acc, seg) => (typeof seg === 'number' ? `${acc}[${seg}]` : acc ? `${acc}.${seg}` : seg), '');
}

function describeIssue(issue: ZodIssue): string {
  switch (issue.code) {
    case 'invalid_type':
      return issue.received === 'undefined' ? `required: expected ${issue.expected}` : `expected ${issue.expected}, received ${issue.received}`;
    case 'unrecognized_keys':
      return `unknown field${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${k}"`).join(', ')}`;
    case 'invalid_enum_value':
      return `expected one of ${issue.options.map((o) => JSON.stringify(o)).join(', ')}, received ${JSON.stringify(issue.received)}`;
    case 'invalid_literal':
      return `expected ${JSON.stringify(issue.expected)}, received ${JSON.stringify(issue.received)}`;
    case 'too_small':
      return issue.type === 'array' ? `expected at least ${issue.minimum} item(s)` : `expected ${issue.inclusive ? '>=' : '>'} ${issue.minimum}`;
    case 'too_big':
      return issue.type === 'array' ? `expected at most ${issue.maximum} item(s)` : `expected ${issue.inclusive ? '<=' : '<'} ${issue.maximum}`;
    default:
      return issue.message;
  }
}

/** Validates `data` against `schema`; throws InputValidationError naming every problem and its path. */
export function validate<T>(schema: ZodType<T, ZodTypeDef, unknown>, data: unknown, source: string): T {
  const result = schema.safeParse(data);
  if (result.success) return result.data;
  const problems = result.error.issues.map((issue) => ({ path: formatPath(issue.path), message: describeIssue(issue) }));
  throw new InputValidationError(source, problems);
}

/** Parses YAML text; a syntax error becomes an InputValidationError with its line and column. */
export function parseYaml(text: string, source: string): unknown {
  const doc = parseDocument(text, { prettyErrors: true });
  if (doc.errors.length > 0) {
    throw new InputValidationError(
      source,
      doc.errors.map((e) => ({ path: e.linePos ? `line ${e.linePos[0].line}, column ${e.linePos[0].col}` : '(yaml)', message: e.message.split('\n')[0] ?? e.message })),
    );
  }
  return doc.toJS();
}

export function readYamlFile(path: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (cause) {
    throw new InputValidationError(path, [{ path: '(file)', message: `cannot read: ${(cause as Error).message}` }], { cause });
  }
  return parseYaml(text, path);
}
