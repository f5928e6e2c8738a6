"""A real SMTP server for the tests (Debian's python3-aiosmtpd; run with /usr/bin/python3).

Writes each message it accepts to DIR as one JSON file (envelope, decoded subject and body, every
header as received), through a temporary file and a rename, so a reader never sees half a message.

  /usr/bin/python3 smtp-sink.py --port PORT --dir DIR [--auth USER:PASSWORD] [--delay-ms N]

Prints "ready" once it listens; stops on SIGTERM.
"""
import argparse
import asyncio
import email
import email.policy
import json
import os
import signal
import threading
import time

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

parser = argparse.ArgumentParser()
parser.add_argument('--port', type=int, required=True)
parser.add_argument('--dir', required=True)
parser.add_argument('--auth')
parser.add_argument('--delay-ms', type=int, default=0)
args = parser.parse_args()
os.makedirs(args.dir, exist_ok=True)
counter = 0


class Sink:
    async def handle_DATA(self, server, session, envelope):
        global counter
        if args.delay_ms:
            await asyncio.sleep(args.delay_ms / 1000)
        msg = email.message_from_bytes(envelope.original_content or envelope.content, policy=email.policy.default)
        body = msg.get_body(preferencelist=('plain',))
        counter += 1
        record = {
            'mailFrom': envelope.mail_from,
            'rcptTos': envelope.rcpt_tos,
            'subject': str(msg['subject']),
            'messageId': str(msg['message-id']),
            'headers': [[k, str(v)] for k, v in msg.items()],
            'body': body.get_content() if body is not None else '',
        }
        name = f'{time.time_ns()}-{os.getpid()}-{counter}'
        tmp = os.path.join(args.dir, f'.{name}.tmp')
        with open(tmp, 'w', encoding='utf-8') as f:
            json.dump(record, f, ensure_ascii=False)
        os.rename(tmp, os.path.join(args.dir, f'{name}.json'))
        return '250 OK'


def authenticator(server, session, envelope, mechanism, auth_data):
    if not args.auth or not isinstance(auth_data, LoginPassword):
        return AuthResult(success=False, handled=False)
    user, _, password = args.auth.partition(':')
    ok = auth_data.login == user.encode() and auth_data.password == password.encode()
    return AuthResult(success=ok, handled=False)


kwargs = {'authenticator': authenticator, 'auth_required': True, 'auth_require_tls': False} if args.auth else {}
controller = Controller(Sink(), hostname='127.0.0.1', port=args.port, **kwargs)
controller.start()
print('ready', flush=True)
stop = threading.Event()
signal.signal(signal.SIGTERM, lambda *_: stop.set())
stop.wait()
controller.stop()
