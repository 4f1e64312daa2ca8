"""The case engine: configurable case types, workflow as data, routing to the handling unit, the
timeline and the case API. Other packages use it through `cityops.cases.service`."""
