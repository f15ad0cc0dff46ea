import { KIND_PRIORITY, type PiiKind } from './pii-kind.ts';

/*
 * Column names are split into lower-case words (snake_case, camelCase, kebab-case, digits dropped),
 * then runs of up to four adjacent words are looked up joined together, longest run first, so that
 * `email_address` is an email and not an address, `card_holder_name` a person and not a card, and
 * `mac_address` nothing at all. Words that make a column a flag, a count or a foreign key
 * (`email_verified`, `token_count`, `card_id`) cancel the match.
 */

/** Joined word runs and what they name; null marks runs that look sensitive but are not. */
const RUNS: ReadonlyMap<string, PiiKind | null> = new Map<string, PiiKind | null>([
  ...words('email', 'email mail emailaddress emailaddr emailaddy mailaddress'),
  ...words(
    'phone',
    'phone phonenumber phoneno phonenum telephone tel telno mobile mobilenumber mobileno mobilephone ' +
      'cellphone cell cellnumber fax faxnumber msisdn contactnumber',
  ),
  ...words('ssn', 'ssn ssnumber socialsecurity socialsecuritynumber socialsecurityno itin'),
  ...words(
    'national-id',
    'nin nino nationalid nationalidentifier nationalidnumber nationalinsurance nationalinsurancenumber ' +
      'sin bsn tin taxid taxpayerid taxnumber taxidnumber nif nie dni cpf curp pesel aadhaar aadhar ' +
      'passport passportnumber passportno personnummer personalid personalnumber idnumber idcard ' +
      'idcardnumber governmentid govid driverslicense driverlicense driverslicence driverlicence ' +
      'driverslicensenumber licensenumber ahv avs',
  ),
  ...words(
    'card',
    'card cardnumber cardno cardnum creditcard creditcardnumber debitcard ccnumber ccnum ccno cc ccn pan ' +
      'primaryaccountnumber cvv cvc cvn cardcvv cardcvc securitycode cardexpiry',
  ),
  ...words('iban', 'iban bankaccount bankaccountnumber accountnumber accountno acctno acctnum bban'),
  ...words(
    'ip',
    'ip ipaddress ipaddr ipv ipnumber clientip clientaddr remoteip remoteaddr remoteaddress sourceip ' +
      'srcip userip lastip lastloginip loginip',
  ),
  ...words(
    'person-name',
    'firstname lastname fullname givenname familyname surname middlename maidenname fname lname mname ' +
      'forename forenames displayname nickname username cardholder cardholdername accountholder ' +
      'accountholdername legalname',
  ),
  ...words(
    'street-address',
    'address addr street streetaddress streetname addressline shippedto shipto shippingaddress ' +
      'billingaddress homeaddress mailingaddress postaladdress residentialaddress deliveryaddress ' +
      'postcode postalcode zip zipcode',
  ),
  ...words('date-of-birth', 'dob dateofbirth birthdate birthday birthdt bday bornon birthdateutc'),
  ...words(
    'secret',
    'password passwd pwd passphrase passcode secret secrets clientsecret apisecret apikey apitoken ' +
      'accesskey secretkey privatekey signingkey encryptionkey masterkey token accesstoken refreshtoken ' +
      'authtoken sessiontoken bearertoken idtoken credential credentials otp totp pin pincode salt',
  ),
  ...words(
    null,
    'macaddress webaddress websiteaddress serveraddress serveraddr hostaddress hostaddr localaddr ' +
      'localaddress contractaddress memoryaddress emaildomain mailserver tokenizer',
  ),
]);

function words(kind: PiiKind | null, list: string): [string, PiiKind | null][] {
  return list.split(' ').map((word) => [word, kind]);
}

/** A last word that turns a sensitive name into metadata about it. */
const METADATA_LAST = new Set(
  (
    'type kind brand count cnt status verified confirmed enabled disabled valid validated flag at on ' +
    'id ids uuid length len format template provider domain policy expires expiry expiration exp ttl ' +
    'scope scopes version algorithm alg country countrycode region state city optin opt consent ' +
    'subscribed bounced sent preference preferences file path url link changed updated created reset ' +
    'required visible'
  ).split(' '),
);

/** A first word that makes the column a flag or a number about the thing named. */
const METADATA_FIRST = new Set(
  'is has num number count total allow require use uses can should enable enabled max min'.split(' '),
);

/** Words before `name` that make it a person's name (`customer_name`, not `product_name`). */
const PERSON_QUALIFIERS = new Set(
  (
    'customer client contact user person member employee staff patient student owner holder recipient ' +
    'sender guardian parent emergency beneficiary billing shipping full first last middle given family ' +
    'maiden legal display nick real author applicant candidate guest driver passenger buyer payee payer ' +
    'subscriber tenant account'
  ).split(' '),
);

/** Table words (singular) whose bare `name` column holds a person's name. */
const PERSON_TABLES = new Set(
  (
    'customer client contact user person people employee staff member patient student author subscriber ' +
    'applicant candidate guest driver passenger owner tenant lead profile doctor teacher account player ' +
    'participant volunteer donor buyer seller traveler traveller visitor recipient sender beneficiary ' +
    'individual resident citizen worker admin agent representative manager friend follower personnel ' +
    'payee payer holder cardholder policyholder insured claimant physician nurse'
  ).split(' '),
);

/** Splits an identifier into lower-case words: `contactEmail2` → contact, email; `IPAddr` → ip, addr. */
export function identifierWords(identifier: string): string[] {
  return identifier
    .replace(/([a-z])([A-Z])/g, '$1 $2')
    .replace(/([A-Z]+)([A-Z][a-z])/g, '$1 $2')
    .toLowerCase()
    .split(/[^a-z0-9]+|(?<=[a-z])(?=[0-9])|(?<=[0-9])(?=[a-z])/)
    .filter((word) => word !== '' && !/^[0-9]+$/.test(word));
}

/**
 * What a column holds, judged by its name: `contact_email` → 'email', `cc_number` → 'card'.
 * `table` (the column's table, schema-qualified or not) decides a bare `name`: a person's name on
 * customers, users, people and the like, nothing on products; with no table it counts as a person's
 * name, since a miss costs more than a needless mask.
 */
export function classifyColumn(column: string, table?: string): PiiKind | null {
  const tokens = identifierWords(column);
  if (tokens.length === 0 || METADATA_FIRST.has(tokens[0]!)) return null;
  const consumed = new Array<boolean>(tokens.length).fill(false);
  let best: PiiKind | null = null;
  let sawNonPii = false;
  for (let size = Math.min(4, tokens.length); size >= 1; size--) {
    for (let start = 0; start + size <= tokens.length; start++) {
      let free = true;
      for (let i = start; i < start + size; i++) if (consumed[i]) free = false;
      if (!free) continue;
      const run = tokens.slice(start, start + size).join('');
      if (!RUNS.has(run)) continue;
      const kind = RUNS.get(run)!;
      for (let i = start; i < start + size; i++) consumed[i] = true;
      if (kind === null) sawNonPii = true;
      else if (best === null || KIND_PRIORITY.indexOf(kind) < KIND_PRIORITY.indexOf(best)) best = kind;
    }
  }
  const last = tokens.length - 1;
  if (!consumed[last] && METADATA_LAST.has(tokens[last]!)) return null;
  if (best !== null) return best;
  if (sawNonPii) return null;
  return bareNameKind(tokens, consumed, table);
}

function bareNameKind(
  tokens: readonly string[],
  consumed: readonly boolean[],
  table?: string,
): PiiKind | null {
  const at = tokens.lastIndexOf('name');
  if (at < 0 || consumed[at]) return null;
  if (at > 0) return PERSON_QUALIFIERS.has(tokens[at - 1]!) ? 'person-name' : null;
  if (tokens.length > 1) return null;
  if (table === undefined) return 'person-name';
  return isPersonTable(table) ? 'person-name' : null;
}

function isPersonTable(table: string): boolean {
  const name = table.slice(table.lastIndexOf('.') + 1);
  return identifierWords(name).some((word) => PERSON_TABLES.has(singular(word)));
}

function singular(word: string): string {
  if (word === 'people' || word === 'staff' || word === 'personnel') return word;
  if (word.endsWith('ies')) return word.slice(0, -3) + 'y';
  if (word.endsWith('sses') || word.endsWith('xes')) return word.slice(0, -2);
  if (word.endsWith('s') && !word.endsWith('ss')) return word.slice(0, -1);
  return word;
}

/*
 * Keys found in data (JSON members, key=value pairs) classified like column names. Bounded: the keys
 * come from values a client controls.
 */
const keyKinds = new Map<string, PiiKind | null>();
const KEY_CACHE_LIMIT = 1024;

/** classifyColumn for a key found inside a value, without a table, remembered for the next row. */
export function classifyKey(key: string): PiiKind | null {
  let kind = keyKinds.get(key);
  if (kind === undefined) {
    kind = classifyColumn(key);
    if (kind === null && key.length > 3 && key.endsWith('s')) kind = classifyColumn(key.slice(0, -1));
    if (keyKinds.size >= KEY_CACHE_LIMIT) keyKinds.clear();
    keyKinds.set(key, kind);
  }
  return kind;
}
