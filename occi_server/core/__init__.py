"""OCCI Core: categories, attributes, entities and the model registry."""

from occi_server.core.category import Action, Attribute, AttrType, Category, Kind, Mixin
from occi_server.core.entity import Entity
from occi_server.core.model import Model
from occi_server.core.states import StateMachine

__all__ = [
    "Action",
    "AttrType",
    "Attribute",
    "Category",
    "Entity",
    "Kind",
    "Mixin",
    "Model",
    "StateMachine",
]
