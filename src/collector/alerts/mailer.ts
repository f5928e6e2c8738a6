import nodemailer from 'nodemailer';
import type { SmtpSettings } from './store';
import type { MailText } from './format';

/** One connection's worth of sending, closed after a pass. */
export interface Mailer {
  /** `messageId` stays the same across retries, so a mail sent twice (the at-least-once window) can be told apart. */
  send(to: string, mail: MailText, messageId?: string): Promise<void>;
  close(): void;
}

export interface MailerTimeouts {
  connectTimeoutMs: number;
  socketTimeoutMs: number;
}

/**
 * A nodemailer transport for the relay. Plain text only; nodemailer encodes the subject (RFC 2047)
 * and every value in it is one line already (format.ts), so no header can be added through it.
 */
export function createMailer(smtp: SmtpSettings, password: string | undefined, timeouts: MailerTimeouts): Mailer {
  const transport = nodemailer.createTransport({
    host: smtp.host,
    port: smtp.port,
    secure: smtp.security === 'tls',
    requireTLS: smtp.security === 'starttls',
    ignoreTLS: smtp.security === 'none',
    auth: smtp.username ? { user: smtp.username, pass: password ?? '' } : undefined,
    connectionTimeout: timeouts.connectTimeoutMs,
    greetingTimeout: timeouts.connectTimeoutMs,
    socketTimeout: timeouts.socketTimeoutMs,
    disableFileAccess: true,
    disableUrlAccess: true,
  });
  return {
    async send(to, mail, messageId) {
      await transport.sendMail({
        from: smtp.from,
        to,
        subject: mail.subject,
        text: mail.body,
        messageId,
        textEncoding: 'base64',
        disableFileAccess: true,
        disableUrlAccess: true,
      });
    },
    close() {
      transport.close();
    },
  };
}

/** A relay error in one line, for `alerts list` and the console. */
export function describeSmtpError(err: unknown): string {
  const e = err as { code?: string; responseCode?: number; response?: string; message?: string };
  const text = e.response ?? e.message ?? String(err);
  return [e.code, e.responseCode, text.replace(/[\r\n]+/g, ' ')].filter((x) => x !== undefined && x !== '').join(' ');
}
