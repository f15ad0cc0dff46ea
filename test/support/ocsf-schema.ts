/**
 * Validates events against OCSF's own JSON Schemas (test/fixtures/ocsf/1.5.0, see its README): one
 * per class the audit export emits, compiled once by TypeBox's JSON Schema (2020-12) validator.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import Schema from 'typebox/schema';

const DIR = join(import.meta.dirname, '../fixtures/ocsf/1.5.0');

/** class_uid to the schema file of its class (with the profiles the export declares). */
const FILES: Record<number, string> = {
  6005: 'datastore_activity.json',
  3002: 'authentication.json',
  6003: 'api_activity.json',
  3004: 'entity_management.json',
  1008: 'event_log_actvity.json',
};

type Validator = ReturnType<typeof Schema.Compile>;
const compiled = new Map<number, Validator>();

function validatorFor(classUid: number): Validator {
  let validator = compiled.get(classUid);
  if (validator === undefined) {
    const file = FILES[classUid];
    if (file === undefined) throw new Error(`no OCSF schema here for class_uid ${classUid}`);
    validator = Schema.Compile(JSON.parse(readFileSync(join(DIR, file), 'utf8')));
    compiled.set(classUid, validator);
  }
  return validator;
}

/** The schema's complaints about an event (empty when it validates), as `path: message` lines. */
export function ocsfProblems(event: Record<string, unknown>): string[] {
  const validator = validatorFor(Number(event['class_uid']));
  const [ok, errors] = validator.Errors(event) as [boolean, { instancePath: string; message: string }[]];
  if (ok) return [];
  return errors.map((error) => `${error.instancePath || '/'}: ${error.message}`);
}
