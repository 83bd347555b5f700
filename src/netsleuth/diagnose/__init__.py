"""From evidence to ranked root causes.

Theory of operation
-------------------
1. `evidence.py` turns a bundle, a `kubectl cluster-info dump` or a pasted transcript into one
   `Evidence` value: per-node data-path state, cluster objects, events, logs, probe outputs,
   and the list of what is missing.
2. Detectors (`detectors/`, one failure mode per module, registered with `@detector`) read the
   evidence and yield `Finding`s. A finding is either a *cause* (something wrong in the
   configuration, proven by state and usually by a trace) or a *symptom* (something observed:
   a log error, a crash loop, an event storm). Each carries its evidence lines.
3. `causes.py` links findings into a causal graph: a finding `explains` symptom keys; a cause
   that explains a symptom that explains others is the root of that chain. Roots are ranked
   by how much they explain and how directly they are proven.
4. `report.py` builds the `Report` every renderer formats.

Detectors never raise into the engine: a crash becomes an internal finding and the run goes on.
"""
