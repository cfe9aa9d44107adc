import { registerEnumType } from '@nestjs/graphql';

/** Who a user is to the broker; one role per user. */
export enum Role {
  /** Runs the platform: onboards agencies, users and purposes, runs linkage. Reads no records. */
  OPERATOR = 'OPERATOR',
  /** Manages its agency's users, datasets and agreements; reads the audit of its agency's data. */
  STEWARD = 'STEWARD',
  /** Queries data under its agency's agreements. */
  ANALYST = 'ANALYST',
  /** Oversight: reads every agreement and the audit log, no records. */
  AUDITOR = 'AUDITOR',
}

registerEnumType(Role, {
  name: 'Role',
  description: 'Who a user is to the broker; one role per user.',
  valuesMap: {
    OPERATOR: {
      description:
        'Runs the platform: onboards agencies, users and purposes, runs linkage. Reads no records.',
    },
    STEWARD: {
      description:
        "Manages its agency's users, datasets and agreements; reads the audit of its agency's data.",
    },
    ANALYST: { description: "Queries data under its agency's agreements." },
    AUDITOR: { description: 'Oversight: reads every agreement and the audit log, no records.' },
  },
});
