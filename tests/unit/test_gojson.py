"""api/wire/gojson: Go's encoding/json type check and wording (Go 1.24, as dockerd v28.2.2)."""

from __future__ import annotations

import pytest

from servin import errors
from servin.api.wire import schemas
from servin.api.wire.gojson import (
    BOOL,
    INT,
    INT64,
    STRING,
    STRSLICE,
    UINT16,
    array_of,
    decode,
    map_of,
    named,
    ptr,
    slice_of,
    struct,
)

pytestmark = pytest.mark.unit

INNER = struct("pkg.Inner", {"N": INT, "S": STRING})
EMBEDDED = struct("pkg.Embedded", {"E": BOOL, "Shadowed": STRING})
OUTER = struct("pkg.Outer", {
    "Name": STRING, "Count": INT64, "Small": UINT16, "Flag": BOOL, "Tags": slice_of(STRING),
    "Opts": map_of(STRING), "Inner": ptr(INNER), "Inners": slice_of(ptr(INNER)), "Cmd": STRSLICE,
    "Mode": named("pkg.Mode", STRING), "Size": ptr(array_of(2, UINT16)), "Shadowed": INT,
    "tagged": STRING,
}, embed=(("Embedded", EMBEDDED),))


def message(body: object, schema=OUTER, prefix: str = "invalid JSON: ") -> str:
    with pytest.raises(errors.InvalidArgument) as e:
        decode(body, schema, prefix=prefix)
    return e.value.message


@pytest.mark.parametrize("body, text", [
    ([], "array into Go value of type pkg.Outer"),
    ("x", "string into Go value of type pkg.Outer"),
    (5, "number into Go value of type pkg.Outer"),
    (True, "bool into Go value of type pkg.Outer"),
    ({"Name": 5}, "number into Go struct field Outer.Name of type string"),
    ({"Name": True}, "bool into Go struct field Outer.Name of type string"),
    ({"Name": []}, "array into Go struct field Outer.Name of type string"),
    ({"Name": {}}, "object into Go struct field Outer.Name of type string"),
    ({"Count": "1"}, "string into Go struct field Outer.Count of type int64"),
    ({"Count": 1.5}, "number 1.5 into Go struct field Outer.Count of type int64"),
    ({"Count": 1 << 63}, "number 9223372036854775808 into Go struct field Outer.Count of type int64"),
    ({"Small": -1}, "number -1 into Go struct field Outer.Small of type uint16"),
    ({"Small": 65536}, "number 65536 into Go struct field Outer.Small of type uint16"),
    ({"Flag": 1}, "number into Go struct field Outer.Flag of type bool"),
    ({"Tags": "a"}, "string into Go struct field Outer.Tags of type []string"),
    ({"Tags": ["a", 1]}, "number into Go struct field Outer.Tags of type string"),
    ({"Opts": []}, "array into Go struct field Outer.Opts of type map[string]string"),
    ({"Opts": {"k": 1}}, "number into Go struct field Outer.Opts of type string"),  # no map key in the path
    ({"Inner": 1}, "number into Go struct field Outer.Inner of type pkg.Inner"),  # the pointed-to type
    ({"Inner": {"N": "x"}}, "string into Go struct field Inner.Inner.N of type int"),  # the innermost struct
    ({"Inners": [{"S": 1}]}, "number into Go struct field Inner.Inners.S of type string"),  # no index
    ({"Inners": [1]}, "number into Go struct field Outer.Inners of type pkg.Inner"),
    ({"Inners": "x"}, "string into Go struct field Outer.Inners of type []*pkg.Inner"),
    ({"Mode": 1}, "number into Go struct field Outer.Mode of type pkg.Mode"),
    ({"Size": "x"}, "string into Go struct field Outer.Size of type [2]uint16"),
    ({"E": "x"}, "string into Go struct field Outer.Embedded.E of type bool"),  # Go 1.24: embedded in the path
    ({"Shadowed": "x"}, "string into Go struct field Outer.Shadowed of type int"),  # the outer field wins
    ({"Cmd": 1}, "number into Go struct field Outer.Cmd of type string"),  # StrSlice's string attempt
    ({"Cmd": ["a", 1]}, "array into Go struct field Outer.Cmd of type string"),
])
def test_go_s_wording(body, text):
    assert message(body) == "invalid JSON: json: cannot unmarshal " + text


def test_the_first_error_in_document_order_is_reported():
    assert message({"Flag": "x", "Name": 1}).endswith("Outer.Flag of type bool")
    assert message({"Name": 1, "Flag": "x"}).endswith("Outer.Name of type string")


def test_an_unmarshaler_s_error_ends_decoding_and_wins():
    # Go saves a type error and goes on; StrSlice.UnmarshalJSON's error is returned at once
    assert message({"Name": 1, "Cmd": 5}).endswith("Outer.Cmd of type string")


def test_the_prefix_is_the_route_s():
    assert message({"Name": 1}, prefix="") == (
        "json: cannot unmarshal number into Go struct field Outer.Name of type string")


def test_null_is_accepted_everywhere_and_leaves_the_zero_value():
    assert decode(None, OUTER) is None
    out = decode({"Name": None, "Count": None, "Tags": ["a", None], "Opts": {"k": None}, "Inner": None,
                  "Inners": [None, {"N": None}], "Cmd": None, "Size": [None]}, OUTER)
    assert out == {"Tags": ["a", ""], "Opts": {"k": ""}, "Inners": [None, {}], "Size": [0, 0]}


def test_null_sets_only_pointers_slices_and_maps_back():
    assert decode({"Name": "a", "name": None, "Tags": ["x"], "tags": None}, OUTER) == {"Name": "a"}


def test_names_match_case_insensitively_and_come_out_as_go_spells_them():
    out = decode({"name": "n", "COUNT": 2, "inner": {"s": "x"}, "Tagged": "t", "e": True}, OUTER)
    assert out == {"Name": "n", "Count": 2, "Inner": {"S": "x"}, "tagged": "t", "E": True}


def test_exact_names_are_preferred_and_a_later_key_wins():
    assert decode({"Name": "a", "name": "b"}, OUTER) == {"Name": "b"}


def test_unknown_keys_are_kept_as_they_came():
    assert decode({"Name": "n", "Other": [1, {"x": None}]}, OUTER) == {"Name": "n", "Other": [1, {"x": None}]}


def test_strslice_takes_one_string_or_a_list():
    assert decode({"Cmd": "ls"}, OUTER) == {"Cmd": ["ls"]}
    assert decode({"Cmd": ["ls", None]}, OUTER) == {"Cmd": ["ls", ""]}


def test_fixed_arrays_are_cut_or_padded():
    assert decode({"Size": [1, 2, 3]}, OUTER) == {"Size": [1, 2]}
    assert decode({"Size": [1]}, OUTER) == {"Size": [1, 0]}


def test_numbers_fit_their_type():
    assert decode({"Count": -(1 << 63), "Small": 65535}, OUTER) == {"Count": -(1 << 63), "Small": 65535}


@pytest.mark.parametrize("schema, body, text", [
    (schemas.VOLUME_CREATE_OPTIONS, {"Name": 5}, "number into Go struct field CreateOptions.Name of type string"),
    (schemas.VOLUME_CREATE_OPTIONS, {"Labels": []},
     "array into Go struct field CreateOptions.Labels of type map[string]string"),
    (schemas.VOLUME_CREATE_OPTIONS, {"DriverOpts": {"a": 1}},
     "number into Go struct field CreateOptions.DriverOpts of type string"),
    (schemas.NETWORK_CREATE_REQUEST, {"Internal": "yes"},
     "string into Go struct field CreateRequest.CreateOptions.Internal of type bool"),
    (schemas.NETWORK_CREATE_REQUEST, {"IPAM": {"Config": [{"AuxiliaryAddresses": ["x"]}]}},
     "array into Go struct field IPAMConfig.CreateOptions.IPAM.Config.AuxiliaryAddresses of type map[string]string"),
    (schemas.UPDATE_CONFIG, {"PidsLimit": "1"},
     "string into Go struct field UpdateConfig.Resources.PidsLimit of type int64"),
    (schemas.EXEC_START_OPTIONS, {"Tty": 1}, "number into Go struct field ExecStartOptions.Tty of type bool"),
    (schemas.CREATE_REQUEST, {"HostConfig": {"Mounts": [{"TmpfsOptions": {"Mode": -1}}]}},
     "number -1 into Go struct field TmpfsOptions.HostConfig.Mounts.TmpfsOptions.Mode of type fs.FileMode"),
])
def test_dockerd_s_structs(schema, body, text):
    assert message(body, schema) == "invalid JSON: json: cannot unmarshal " + text
