"""Runtime contracts: policy as code, read from positioned YAML nodes (standard library only).

A contract file is parsed outside the pure core into :mod:`lockgate.contracts.tree` nodes;
:func:`read_contract` checks it, :func:`desired_definition` and :func:`desired_config` say
what it asks of a behavior, :func:`check_config` keeps it holding after apply, and
:func:`explain` traces every line to what enforces it.
"""

from lockgate.contracts.desired import CONTRACT_RULE_PREFIX, desired_config, desired_definition
from lockgate.contracts.enforce import check_config, loosening, served_variations
from lockgate.contracts.explain import Trace, explain
from lockgate.contracts.export import export_contract
from lockgate.contracts.model import BEHAVIOR_KINDS, ROOT, Contract, read_contract
from lockgate.contracts.schema import contract_schema
from lockgate.contracts.tree import MapNode, Node, Problem, ScalarNode, SeqNode, plain

__all__ = [
    "BEHAVIOR_KINDS",
    "CONTRACT_RULE_PREFIX",
    "ROOT",
    "Contract",
    "MapNode",
    "Node",
    "Problem",
    "ScalarNode",
    "SeqNode",
    "Trace",
    "check_config",
    "contract_schema",
    "desired_config",
    "desired_definition",
    "explain",
    "export_contract",
    "loosening",
    "plain",
    "read_contract",
    "served_variations",
]
