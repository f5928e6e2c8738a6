/** An RFC 5424 message split into its parts, structured data unescaped (the test's own reading of the RFC). */
export interface Parsed5424 {
  pri: number;
  timestamp: string;
  host: string;
  app: string;
  msgid: string;
  sdId: string | undefined;
  params: Record<string, string>;
  msg: string;
}

export function parse5424(line: string): Parsed5424 {
  const head = /^<(\d{1,3})>1 (\S+) (\S+) (\S+) (\S+) (\S+) /.exec(line);
  if (!head) throw new Error(`not RFC 5424: ${line.slice(0, 120)}`);
  let rest = line.slice(head[0].length);
  const params: Record<string, string> = {};
  let sdId: string | undefined;
  if (rest.startsWith('-')) rest = rest.slice(1);
  else {
    const id = /^\[([^ \]=]+)/.exec(rest);
    if (!id) throw new Error(`bad SD: ${rest.slice(0, 80)}`);
    sdId = id[1];
    let i = id[0].length;
    while (rest[i] === ' ') {
      const name = /^ ([^ =\]"]+)="/.exec(rest.slice(i));
      if (!name) throw new Error(`bad SD-PARAM at ${rest.slice(i, i + 40)}`);
      i += name[0].length;
      let value = '';
      while (rest[i] !== '"') {
        if (i >= rest.length) throw new Error('unterminated PARAM-VALUE');
        if (rest[i] === '\\' && ['"', '\\', ']'].includes(rest[i + 1]!)) {
          value += rest[i + 1];
          i += 2;
        } else value += rest[i++];
      }
      params[name[1]!] = value;
      i++;
    }
    if (rest[i] !== ']') throw new Error(`SD not closed: ${rest.slice(i, i + 40)}`);
    rest = rest.slice(i + 1);
  }
  if (rest.startsWith(' ')) rest = rest.slice(1);
  if (rest.startsWith('\uFEFF')) rest = rest.slice(1);
  return { pri: Number(head[1]), timestamp: head[2]!, host: head[3]!, app: head[4]!, msgid: head[6]!, sdId, params, msg: rest };
}
