import { describe, expect, it } from 'vitest';
import { classifyColumn, classifyKey, identifierWords } from './classify-column.ts';

describe('classifyColumn', () => {
  it.each([
    ['email', 'email'],
    ['e_mail', 'email'],
    ['E-Mail', 'email'],
    ['mail', 'email'],
    ['contact_email', 'email'],
    ['contactEmail', 'email'],
    ['EmailAddress', 'email'],
    ['email_address', 'email'],
    ['phone', 'phone'],
    ['tel', 'phone'],
    ['mobile', 'phone'],
    ['phone_number', 'phone'],
    ['cellPhone', 'phone'],
    ['ssn', 'ssn'],
    ['social_security', 'ssn'],
    ['social_security_number', 'ssn'],
    ['CustomerSSN', 'ssn'],
    ['national_id', 'national-id'],
    ['nin', 'national-id'],
    ['passport_number', 'national-id'],
    ['tax_id', 'national-id'],
    ['card', 'card'],
    ['card_number', 'card'],
    ['cc_number', 'card'],
    ['pan', 'card'],
    ['credit_card_number', 'card'],
    ['cvv2', 'card'],
    ['iban', 'iban'],
    ['account_number', 'iban'],
    ['ip', 'ip'],
    ['ip_address', 'ip'],
    ['IPAddress', 'ip'],
    ['ipv4', 'ip'],
    ['client_addr', 'ip'],
    ['first_name', 'person-name'],
    ['lastName', 'person-name'],
    ['full_name', 'person-name'],
    ['surname', 'person-name'],
    ['customer_name', 'person-name'],
    ['card_holder_name', 'person-name'],
    ['username', 'person-name'],
    ['address', 'street-address'],
    ['street', 'street-address'],
    ['shipped_to', 'street-address'],
    ['billing_address', 'street-address'],
    ['address_line1', 'street-address'],
    ['zip_code', 'street-address'],
    ['dob', 'date-of-birth'],
    ['date_of_birth', 'date-of-birth'],
    ['birthdate', 'date-of-birth'],
    ['dateOfBirth', 'date-of-birth'],
    ['password', 'secret'],
    ['password_hash', 'secret'],
    ['secret', 'secret'],
    ['api_key', 'secret'],
    ['access_token', 'secret'],
    ['token', 'secret'],
    ['email_password', 'secret'],
  ])('%s is %s', (column, kind) => {
    expect(classifyColumn(column)).toBe(kind);
  });

  it.each([
    'id',
    'notes',
    'amount',
    'customer_id',
    'created_at',
    'email_verified',
    'email_verified_at',
    'is_email_confirmed',
    'has_phone',
    'phone_type',
    'card_type',
    'card_id',
    'token_count',
    'prompt_tokens',
    'password_changed_at',
    'mac_address',
    'email_domain',
    'product_name',
    'file_name',
    'hostname',
    'address_city',
    'description',
    'status',
  ])('%s is nothing sensitive', (column) => {
    expect(classifyColumn(column)).toBeNull();
  });

  it.each([
    ['customers', 'person-name'],
    ['public.users', 'person-name'],
    ['people', 'person-name'],
    ['employees', 'person-name'],
    ['app_user_accounts', 'person-name'],
    ['products', null],
    ['pg_settings', null],
    ['orders', null],
  ])('a bare name column on %s is %s', (table, kind) => {
    expect(classifyColumn('name', table)).toBe(kind);
  });

  it('takes a bare name without a table for a person, since a miss costs more', () => {
    expect(classifyColumn('name')).toBe('person-name');
  });

  it('classifies keys found in data, plural ones too', () => {
    expect(classifyKey('emails')).toBe('email');
    expect(classifyKey('ssn')).toBe('ssn');
    expect(classifyKey('notes')).toBeNull();
  });

  it('splits identifiers into words', () => {
    expect(identifierWords('contactEmail2')).toEqual(['contact', 'email']);
    expect(identifierWords('IPAddr')).toEqual(['ip', 'addr']);
    expect(identifierWords('address_line1')).toEqual(['address', 'line']);
    expect(identifierWords('e-mail')).toEqual(['e', 'mail']);
  });
});
