"""Tasks for the response team, stored in the ``tasks`` collection.

A task id is derived from the step key and the task's position, and written create-only, so a
retried or resumed step never creates a task twice.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from soc.model import iso, now_utc
from soc.playbooks.actions._util import as_list, digest
from soc.playbooks.registry import ActionContext, ActionError, action

TASKS = "tasks"


@action("task.create")
def create(ctx: ActionContext, title: str | None = None, description: str = "", incident_id: str | None = None,
           assignee: str | None = None, due_hours: float | None = None, priority: str = "medium",
           tasks: Any = None) -> dict[str, Any]:
    """Create one task (``title``...) or several (``tasks``: a list of mappings with the same keys)."""
    items = [t for t in as_list(tasks) if isinstance(t, dict)]
    if title:
        items.insert(0, {"title": title, "description": description, "assignee": assignee,
                         "due_hours": due_hours, "priority": priority})
    if not items:
        raise ActionError("task.create: give 'title' or 'tasks'", retryable=False)
    if ctx.dry_run:
        return {"dry_run": True, "would": [f"task: {t.get('title')}" for t in items], "ids": []}
    ids, created = [], 0
    now = now_utc()
    for index, item in enumerate(items):
        if not item.get("title"):
            raise ActionError(f"task.create: task {index + 1} has no title", retryable=False)
        task_id = digest(ctx.key, index)
        hours = item.get("due_hours", due_hours)
        body = {"id": task_id, "title": str(item["title"]), "description": str(item.get("description") or ""),
                "incident_id": item.get("incident_id") or incident_id, "assignee": item.get("assignee") or assignee,
                "priority": item.get("priority") or priority, "status": "open", "created_at": iso(now),
                "due_at": iso(now + timedelta(hours=float(hours))) if hours else None,
                "created_by": f"playbook:{ctx.playbook_id}", "run_id": ctx.run_id, "step_id": ctx.step_id}
        if ctx.store.create(TASKS, task_id, body):
            created += 1
        ids.append(task_id)
    return {"ids": ids, "created": created}
