"""Sends OpenLineage run events with the real openlineage-python client.

The client is configured the way a producer would be, from its environment
only (OPENLINEAGE_URL + OPENLINEAGE_API_KEY, or OPENLINEAGE__TRANSPORT__...
for gzip), so the test proves what the README tells users to set.

Reads a JSON list of steps on stdin, each:
  {"type": "COMPLETE", "run": "<uuid>", "job": ["ns", "name"], "time": "<iso>",
   "inputs": [["ns", "name"]], "outputs": [["ns", "name", rowCount or null]],
   "error": "message" (errorMessage facet), "nominal": "<iso>" (nominalTime),
   "assertions": [["ns", "name", "assertion", "column" or null, success]]}
(assertions go on the input dataset of that name, as dbt-ol sends tests).
Prints one line per step: "ok", or the HTTP status the client got and the
answer's body.
"""

import json
import sys

import requests
from openlineage.client import OpenLineageClient
from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
from openlineage.client.facet_v2 import (
    data_quality_assertions_dataset as dqa,
    error_message_run,
    nominal_time_run,
    output_statistics_output_dataset as stats,
)

PRODUCER = "https://github.com/tributary/tests/openlineage_send.py"


def event(step):
    run_facets = {}
    if step.get("error"):
        run_facets["errorMessage"] = error_message_run.ErrorMessageRunFacet(
            message=step["error"], programmingLanguage="PYTHON"
        )
    if step.get("nominal"):
        run_facets["nominalTime"] = nominal_time_run.NominalTimeRunFacet(
            nominalStartTime=step["nominal"]
        )
    assertions = {}
    for ns, name, assertion, column, success in step.get("assertions", []):
        assertions.setdefault((ns, name), []).append(
            dqa.Assertion(assertion=assertion, success=success, column=column)
        )
    inputs = []
    for ns, name in step.get("inputs", []):
        facets = {}
        if (ns, name) in assertions:
            facets["dataQualityAssertions"] = dqa.DataQualityAssertionsDatasetFacet(
                assertions=assertions.pop((ns, name))
            )
        inputs.append(InputDataset(namespace=ns, name=name, inputFacets=facets))
    outputs = []
    for ns, name, rows in step.get("outputs", []):
        facets = {}
        if rows is not None:
            facets["outputStatistics"] = stats.OutputStatisticsOutputDatasetFacet(rowCount=rows)
        outputs.append(OutputDataset(namespace=ns, name=name, outputFacets=facets))
    return RunEvent(
        eventType=RunState[step["type"]],
        eventTime=step["time"],
        run=Run(runId=step["run"], facets=run_facets),
        job=Job(namespace=step["job"][0], name=step["job"][1]),
        producer=PRODUCER,
        inputs=inputs,
        outputs=outputs,
    )


def main():
    client = OpenLineageClient()
    for step in json.load(sys.stdin):
        try:
            client.emit(event(step))
            print("ok", flush=True)
        except requests.HTTPError as e:
            print(e.response.status_code, e.response.text.replace("\n", " "), flush=True)


if __name__ == "__main__":
    main()
