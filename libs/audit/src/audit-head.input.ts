import { Field, InputType, Int } from '@nestjs/graphql';

/** A head of the audit log written down earlier, as the public register shows it (`auditHead`). */
@InputType('AuditHeadInput', {
  description:
    'A head of the audit log written down earlier, as the public register shows it (`auditHead`): the log must still hold an event with this seq and this hash.',
})
export class AuditHeadInput {
  @Field(() => Int, { description: 'The seq of the latest event when the head was written down.' })
  seq!: number;
  @Field(() => String, { description: "That event's hash (64 hexadecimal digits)." })
  hash!: string;
}
