import { type SectionHeader, sectionFile } from './section.ts';

/** One section's rows cited for a control: the file, which count, and what those rows show. */
interface Citation {
  readonly section: string;
  readonly count: string;
  readonly claim: (rows: number) => string;
}

interface ControlDefinition {
  readonly framework: 'SOC 2' | 'NIST 800-53';
  readonly id: string;
  readonly title: string;
  readonly cites: readonly Citation[];
}

const n = (rows: number, one: string, many = `${one}s`) => `${rows} ${rows === 1 ? one : many}`;

const POLICY_IN_FORCE: Citation = {
  section: 'access',
  count: 'inForce',
  claim: (r) =>
    `${n(r, 'source')} with the policy in force recorded (its digest, and who put it in force when the bundle said)`,
};
const GRANTS: Citation = {
  section: 'access',
  count: 'grants',
  claim: (r) =>
    `${n(r, 'DatabaseAccess grant')} of the given bundle: subjects, statement classes, guardrails, masking`,
};
const CHANGES: Citation = {
  section: 'access',
  count: 'changes',
  claim: (r) => `${n(r, 'policy change')} in the period, each with its digests and changedBy as recorded`,
};
const REFUSED_STATEMENTS: Citation = {
  section: 'refusals',
  count: 'statement',
  claim: (r) => `${n(r, 'statement')} refused by policy, each with its rule or reason`,
};
const REFUSED_LOGINS: Citation = {
  section: 'refusals',
  count: 'login',
  claim: (r) => `${n(r, 'login')} refused, with the user name given and the client address`,
};
const WARNINGS: Citation = {
  section: 'refusals',
  count: 'warning',
  claim: (r) => `${n(r, 'statement')} that ran with a guardrail warning or dry-run finding`,
};
const DENIED: Citation = {
  section: 'refusals',
  count: 'approvalDenied',
  claim: (r) => `${n(r, 'approval request')} denied, with who denied it`,
};
const PRIVILEGED: Citation = {
  section: 'privileged',
  count: 'rows',
  claim: (r) =>
    `${n(r, 'privileged statement')} (DDL, administration or approved) with who ran it and its outcome`,
};
const APPROVED: Citation = {
  section: 'privileged',
  count: 'approved',
  claim: (r) => `${n(r, 'statement')} released by an approval, with the request`,
};
const DDL: Citation = {
  section: 'privileged',
  count: 'ddl',
  claim: (r) => `${n(r, 'DDL statement')} with who ran it`,
};
const EXEMPTIONS: Citation = {
  section: 'exemptions',
  count: 'rows',
  claim: (r) => `${n(r, 'access request')} with who asked, who decided, and who saw clear values under it`,
};
const MASKED_COLUMNS: Citation = {
  section: 'masking',
  count: 'rows',
  claim: (r) =>
    `${n(r, 'sensitive column')} with, per identity, statements that returned it masked or in clear`,
};
const CHAINS_OK: Citation = {
  section: 'chains',
  count: 'ok',
  claim: (r) => `${n(r, 'source')} whose chain and signed checkpoints verified`,
};
const RECORDS: Citation = {
  section: 'chains',
  count: 'periodRecords',
  claim: (r) =>
    `${n(r, 'audit record')} of statements, refused logins, approvals and policy changes in the period, each naming who, what, when and the outcome`,
};

export const CONTROLS: readonly ControlDefinition[] = [
  {
    framework: 'SOC 2',
    id: 'CC6.1',
    title: 'Logical access security over protected information assets',
    cites: [POLICY_IN_FORCE, GRANTS, REFUSED_STATEMENTS, MASKED_COLUMNS],
  },
  {
    framework: 'SOC 2',
    id: 'CC6.2',
    title: 'Registration and authorisation of users before access',
    cites: [GRANTS, REFUSED_LOGINS],
  },
  {
    framework: 'SOC 2',
    id: 'CC6.3',
    title: 'Access authorised, modified or removed by role and least privilege',
    cites: [CHANGES, APPROVED, EXEMPTIONS],
  },
  {
    framework: 'SOC 2',
    id: 'CC6.6',
    title: 'Logical access measures against threats from outside the boundary',
    cites: [REFUSED_LOGINS, MASKED_COLUMNS],
  },
  {
    framework: 'SOC 2',
    id: 'CC7.2',
    title: 'Monitoring of system components for anomalies',
    cites: [REFUSED_STATEMENTS, WARNINGS, CHAINS_OK],
  },
  {
    framework: 'SOC 2',
    id: 'CC7.3',
    title: 'Evaluation of security events',
    cites: [REFUSED_STATEMENTS, REFUSED_LOGINS, DENIED],
  },
  {
    framework: 'SOC 2',
    id: 'CC8.1',
    title: 'Changes authorised, tested, approved and implemented',
    cites: [CHANGES, DDL, APPROVED],
  },
  { framework: 'NIST 800-53', id: 'AC-2', title: 'Account management', cites: [GRANTS, EXEMPTIONS] },
  {
    framework: 'NIST 800-53',
    id: 'AC-3',
    title: 'Access enforcement',
    cites: [REFUSED_STATEMENTS, MASKED_COLUMNS],
  },
  {
    framework: 'NIST 800-53',
    id: 'AC-6',
    title: 'Least privilege',
    cites: [PRIVILEGED, EXEMPTIONS, MASKED_COLUMNS],
  },
  { framework: 'NIST 800-53', id: 'AU-2', title: 'Event logging', cites: [RECORDS] },
  {
    framework: 'NIST 800-53',
    id: 'AU-3',
    title: 'Content of audit records',
    cites: [PRIVILEGED, REFUSED_STATEMENTS],
  },
  {
    framework: 'NIST 800-53',
    id: 'AU-6',
    title: 'Audit record review, analysis and reporting',
    cites: [REFUSED_STATEMENTS, WARNINGS, DENIED],
  },
  { framework: 'NIST 800-53', id: 'AU-9', title: 'Protection of audit information', cites: [CHAINS_OK] },
  { framework: 'NIST 800-53', id: 'AU-12', title: 'Audit record generation', cites: [RECORDS, CHAINS_OK] },
  { framework: 'NIST 800-53', id: 'CM-3', title: 'Configuration change control', cites: [CHANGES, DDL] },
];

export interface ControlRow {
  readonly framework: string;
  readonly id: string;
  readonly title: string;
  /** Whether any cited row exists: a control with none is listed, and says so. */
  readonly evidenced: boolean;
  readonly evidence: readonly {
    readonly file: string;
    readonly count: string;
    readonly rows: number;
    readonly claim: string;
  }[];
  /** What weakens the evidence: a source that failed verification, records the writers lost. */
  readonly exceptions: readonly string[];
}

export interface ControlsSection extends SectionHeader {
  readonly rows: readonly ControlRow[];
}

/**
 * Each control with the section files and row counts that evidence it. A claim is made only for a
 * count above zero; a control whose cited counts are all zero says that nothing here evidences it.
 */
export function buildControlsSection(sections: readonly SectionHeader[]): ControlsSection {
  const bySection = new Map(sections.map((s) => [s.section, s]));
  const chains = bySection.get('chains');
  const broken = chains?.counts['broken'] ?? 0;
  const lost = chains?.counts['lost'] ?? 0;
  const exceptions = [
    ...(broken > 0
      ? [
          `${n(broken, 'source')} failed chain verification: its records are not proven complete or unaltered (chains.json)`,
        ]
      : []),
    ...(lost > 0
      ? [
          `${n(lost, 'record')} the writers could not write, as their audit.loss records say: the period is not complete (chains.json)`,
        ]
      : []),
  ];
  const rows = CONTROLS.map((control): ControlRow => {
    const evidence = control.cites.map((cite) => {
      const rows = bySection.get(cite.section)?.counts[cite.count] ?? 0;
      return {
        file: sectionFile(cite.section),
        count: cite.count,
        rows,
        claim:
          rows > 0
            ? cite.claim(rows)
            : `no rows: ${sectionFile(cite.section)} shows nothing for this (${cite.count} is 0)`,
      };
    });
    return {
      framework: control.framework,
      id: control.id,
      title: control.title,
      evidenced: evidence.some((e) => e.rows > 0),
      evidence,
      exceptions,
    };
  });
  const period = sections[0]?.period ?? { from: '', to: '' };
  return {
    section: 'controls',
    title: 'Controls mapping',
    period,
    shows:
      'For each SOC 2 and NIST 800-53 control listed, the section files and row counts of this pack that evidence it, and what those rows show.',
    doesNotShow:
      'That a control is met: the rows support an assessment, they are not one. Controls outside the proxy (who may edit the policy, key custody, the database itself) need evidence from elsewhere.',
    counts: { rows: rows.length, evidenced: rows.filter((r) => r.evidenced).length },
    rows,
  };
}
