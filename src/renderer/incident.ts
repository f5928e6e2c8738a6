import { INCIDENT_CATEGORIES, type IncidentCategory } from '../shared/incident-categories.js';
import { el, initPage, showError, t } from './common.js';
import type { MessageKey } from './messages.js';

async function main(): Promise<void> {
  await initPage();
  const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
  const box = $('categories');
  INCIDENT_CATEGORIES.forEach((c, i) => {
    const label = el('label');
    const input = el('input');
    input.type = 'radio';
    input.name = 'category';
    input.value = c;
    input.required = true;
    if (i === 0) input.checked = true;
    label.append(input, el('span', t(`category.${c}` as MessageKey)));
    box.append(label);
  });
  $('description').focus();
  $<HTMLFormElement>('form').addEventListener('submit', async (event) => {
    event.preventDefault();
    const error = $('error');
    error.hidden = true;
    const description = $<HTMLTextAreaElement>('description').value.trim();
    if (!description) {
      $('description').focus();
      return;
    }
    const category = (document.querySelector<HTMLInputElement>('input[name=category]:checked')?.value ?? 'other') as IncidentCategory;
    const occurred = $<HTMLInputElement>('occurredAt').value;
    const contact = $<HTMLInputElement>('contact').value.trim();
    $<HTMLButtonElement>('submit').disabled = true;
    try {
      const { receipt, queued } = await window.mamori.reportIncident({
        category,
        description,
        ...(occurred ? { occurredAt: new Date(occurred).toISOString() } : {}),
        ...(contact ? { contact } : {}),
      });
      const status = await window.mamori.status().catch(() => null);
      $('doneText').textContent = t(queued ? 'incident.queued' : 'incident.sent');
      $('receipt').textContent = receipt;
      $('contactInfo').textContent = status?.incidentContact || '-';
      $('form').hidden = true;
      $('done').hidden = false;
      $('receipt').focus();
    } catch (err) {
      showError(error, err);
      $<HTMLButtonElement>('submit').disabled = false;
    }
  });
}

void main();
