import type { FastifyInstance, FastifyReply } from 'fastify';
import { z } from 'zod';
import { MamoriError, Policy, PolicyInput, SEGMENTS, type Segment } from '../../../shared';
import { draftFromForm, draftFromPolicy, validateDraft, type DraftErrors, type PolicyDraft } from '../../console/policy-form';
import { terminalsIn } from '../../console/queries';
import { PoliciesPage, PolicyEditPage, PolicyPreviewPage, PolicyVersionPage, isSegment, type HistoryEntry } from '../../console/views/pages/policies';
import type { View } from '../../console/views/view';
import { applyPolicyChange, currentPolicy, policyHistory } from '../../policies';
import { AnyQuery, FormField, str, type ConsoleKit } from './kit';

const SegmentParams = z.object({ segment: z.string() });
const VersionParams = z.object({ segment: z.string(), version: z.string() });
const EditQuery = z.object({ from: FormField, addVendor: FormField, addProduct: FormField, addSerial: FormField }).loose().optional();
/** The policy editor's form: its allowlist rows are numbered fields, so fields beyond these pass. */
const PolicyForm = z.looseObject({ _csrf: FormField, document: FormField, baseVersion: FormField }).optional();

const historyEntries = (history: Awaited<ReturnType<typeof policyHistory>>): HistoryEntry[] =>
  history.map((h) => ({
    version: h.policy.version,
    issuedAt: h.policy.issuedAt,
    by: h.createdBy,
    mode: h.policy.removableMedia.mode,
    allowCount: h.policy.removableMedia.allow.length,
  }));

const segmentParam = (params: unknown): Segment => {
  const { segment } = params as { segment: string };
  if (!isSegment(segment)) throw new MamoriError('not_found', `no segment ${segment}`);
  return segment;
};

/** The reviewed policy a preview carried in its form. @throws MamoriError bad_request when it is missing or altered. */
const documentOf = (body: Record<string, unknown>, segment: Segment): PolicyInput => {
  let raw: unknown;
  try {
    raw = JSON.parse(str(body.document));
  } catch {
    throw new MamoriError('bad_request', 'the reviewed policy is missing; edit it again');
  }
  const parsed = PolicyInput.safeParse(raw);
  if (!parsed.success || parsed.data.segment !== segment) throw new MamoriError('bad_request', 'the reviewed policy is not valid; edit it again');
  return parsed.data;
};

type EditPage = (reply: FastifyReply, v: View, segment: Segment, draft: PolicyDraft | null, errors?: DraftErrors, status?: number) => Promise<unknown>;
const config = { page: 'policies' } as const;

/** Security policies per segment: the summary, the editor with its preview, saving, and old versions. */
export function policyPages(scope: FastifyInstance, kit: ConsoleKit): void {
  const editPage = editPageOf(kit);
  policyViews(scope, kit, editPage);
  policyChanges(scope, kit, editPage);
}

/** The editor: the segment's current policy (or a draft) with its history and terminals. */
function editPageOf(kit: ConsoleKit): EditPage {
  const { ctx, send } = kit;
  return async (reply: FastifyReply, v: View, segment: Segment, draft: PolicyDraft | null, errors: DraftErrors = {}, status = 200) => {
    const history = await policyHistory(ctx.db, segment);
    const current = history[0]!;
    return send(
      reply,
      <PolicyEditPage
        v={v}
        segment={segment}
        current={current.policy}
        by={current.createdBy}
        draft={draft ?? draftFromPolicy(current.policy)}
        errors={errors}
        history={historyEntries(history)}
        terminals={await terminalsIn(ctx.db, segment)}
      />,
      status,
    );
  };
}

/** The summary, one segment's editor, and an old version. */
function policyViews(scope: FastifyInstance, kit: ConsoleKit, editPage: EditPage): void {
  const { ctx, send } = kit;
  scope.get(
    '/policies',
    { config, schema: { querystring: AnyQuery } },
    kit.guarded(async (_request, reply, _s, v) => {
      const summaries = [];
      for (const segment of SEGMENTS) {
        const [latest] = await policyHistory(ctx.db, segment);
        summaries.push({ segment, policy: latest!.policy, by: latest!.createdBy, terminals: await terminalsIn(ctx.db, segment) });
      }
      return send(reply, <PoliciesPage v={v} summaries={summaries} />);
    }),
  );

  scope.get(
    '/policies/:segment',
    { config, schema: { params: SegmentParams, querystring: EditQuery } },
    kit.guarded(async (request, reply, _s, v) => {
      const segment = segmentParam(request.params);
      const q = (request.query ?? {}) as Record<string, unknown>;
      let draft: PolicyDraft | null = null;
      const from = Number(str(q.from));
      if (Number.isInteger(from) && from > 0) {
        const old = (await policyHistory(ctx.db, segment)).find((h) => h.policy.version === from);
        if (old) draft = draftFromPolicy(old.policy);
      }
      if (str(q.addVendor) || str(q.addProduct)) {
        // "Add to the allowlist" from a terminal's device list: one prefilled row to check and save.
        draft ??= draftFromPolicy(await currentPolicy(ctx.db, segment));
        draft.allow.push({
          vendorId: str(q.addVendor).slice(0, 4),
          productId: str(q.addProduct).slice(0, 4),
          serial: str(q.addSerial).slice(0, 255),
          note: '',
        });
      }
      return editPage(reply, v, segment, draft);
    }),
  );

  scope.get(
    '/policies/:segment/versions/:version',
    { config, schema: { params: VersionParams } },
    kit.guarded(async (request, reply, _s, v) => {
      const segment = segmentParam(request.params);
      const version = Number((request.params as { version: string }).version);
      const history = await policyHistory(ctx.db, segment);
      const at = history.findIndex((h) => h.policy.version === version);
      if (at < 0) throw new MamoriError('not_found', `no version ${version}`);
      return send(
        reply,
        <PolicyVersionPage
          v={v}
          segment={segment}
          policy={Policy.parse(history[at]!.policy)}
          previous={history[at + 1]?.policy ?? null}
          by={history[at]!.createdBy}
        />,
      );
    }),
  );
}

/** Preview, back to editing, and saving a new version. */
function policyChanges(scope: FastifyInstance, kit: ConsoleKit, editPage: EditPage): void {
  const { ctx, send, actorOf, flashNext, redirect } = kit;
  scope.post(
    '/policies/:segment/preview',
    { config, schema: { params: SegmentParams, body: PolicyForm } },
    kit.guarded(async (request, reply, _s, v) => {
      const segment = segmentParam(request.params);
      const draft = draftFromForm((request.body ?? {}) as Record<string, unknown>);
      const { input, errors } = validateDraft(draft, segment, v.t);
      if (!input) return editPage(reply, v, segment, draft, errors, 400);
      const current = await currentPolicy(ctx.db, segment);
      return send(
        reply,
        <PolicyPreviewPage
          v={v}
          segment={segment}
          current={current}
          input={input}
          document={JSON.stringify(input)}
          terminals={await terminalsIn(ctx.db, segment)}
        />,
      );
    }),
  );

  scope.post(
    '/policies/:segment/edit',
    { config, schema: { params: SegmentParams, body: PolicyForm } },
    kit.guarded(async (request, reply, _s, v) => {
      const segment = segmentParam(request.params);
      return editPage(reply, v, segment, draftFromPolicy(documentOf((request.body ?? {}) as Record<string, unknown>, segment)));
    }),
  );

  scope.post(
    '/policies/:segment',
    { config, schema: { params: SegmentParams, body: PolicyForm } },
    kit.guarded(async (request, reply, s, v) => {
      const segment = segmentParam(request.params);
      const body = (request.body ?? {}) as Record<string, unknown>;
      const input = documentOf(body, segment);
      const current = await currentPolicy(ctx.db, segment);
      if (String(current.version) !== str(body.baseVersion)) {
        // Someone saved in between: show their version rather than overwrite it unseen.
        return editPage(
          reply,
          { ...v, flash: { kind: 'error', text: v.t('policies.conflict', { v: current.version }) } },
          segment,
          draftFromPolicy(input),
          {},
          409,
        );
      }
      const { after } = await applyPolicyChange(ctx.db, ctx.key, input, actorOf(request, s), ctx.clock);
      flashNext(reply, 'ok', 'policies.changed', { segment: v.t(`segment.${segment}`), v: after.version });
      return redirect(reply, `/policies/${segment}`);
    }),
  );
}
