import { PublishCommand, type SNSClient } from '@aws-sdk/client-sns';
import type { Alert } from '../../core/types.ts';
import type { CallOptions, Notifier } from '../../reconcile/ports.ts';

/**
 * One SNS message per tick's alerts: a subject an on-call reads in a mail client, the alerts as
 * lines of text, and the same alerts as JSON for whatever subscribes programmatically.
 */

export const MAX_SUBJECT_LENGTH = 100;

export class SnsNotifier implements Notifier {
  constructor(
    private readonly client: SNSClient,
    private readonly topicArn: string,
  ) {}

  async notify(alerts: ReadonlyArray<Alert>, options: CallOptions = {}): Promise<void> {
    if (alerts.length === 0) return;
    const message = [...alerts.map((a) => `[${a.kind}] ${a.message}`), '', JSON.stringify({ alerts }, null, 2)].join('\n');
    await this.client.send(new PublishCommand({ TopicArn: this.topicArn, Subject: subjectOf(alerts), Message: message }), { abortSignal: options.signal });
  }
}

/** SNS subjects: at most 100 printable ASCII characters, no line breaks. */
export function subjectOf(alerts: ReadonlyArray<Alert>): string {
  const services = [...new Set(alerts.map((a) => a.service))].join(', ');
  const what = alerts.length === 1 ? alerts[0]!.kind : `${alerts.length} alerts`;
  const subject = `hwai: ${what} (${services})`.replace(/[^\x20-\x7e]/g, '?');
  return subject.length <= MAX_SUBJECT_LENGTH ? subject : `${subject.slice(0, MAX_SUBJECT_LENGTH - 3)}...`;
}
