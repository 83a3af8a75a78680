/*
 * protocol/wire.h - MySQL wire-protocol constants.
 *
 * Our own names (WIRE_*) so nothing here collides with <mysql.h>, which
 * router/ also includes for MariaDB Connector/C. Values are the protocol's.
 */
#ifndef SHARDWIRE_PROTOCOL_WIRE_H
#define SHARDWIRE_PROTOCOL_WIRE_H

/* Commands: first payload byte of a client request. */
#define WIRE_COM_SLEEP               0x00
#define WIRE_COM_QUIT                0x01
#define WIRE_COM_INIT_DB             0x02
#define WIRE_COM_QUERY               0x03
#define WIRE_COM_FIELD_LIST          0x04
#define WIRE_COM_CREATE_DB           0x05
#define WIRE_COM_DROP_DB             0x06
#define WIRE_COM_REFRESH             0x07
#define WIRE_COM_SHUTDOWN            0x08
#define WIRE_COM_STATISTICS          0x09
#define WIRE_COM_PROCESS_INFO        0x0a
#define WIRE_COM_CONNECT             0x0b
#define WIRE_COM_PROCESS_KILL        0x0c
#define WIRE_COM_DEBUG               0x0d
#define WIRE_COM_PING                0x0e
#define WIRE_COM_CHANGE_USER         0x11
#define WIRE_COM_BINLOG_DUMP         0x12
#define WIRE_COM_STMT_PREPARE        0x16
#define WIRE_COM_STMT_EXECUTE        0x17
#define WIRE_COM_STMT_SEND_LONG_DATA 0x18
#define WIRE_COM_STMT_CLOSE          0x19
#define WIRE_COM_STMT_RESET          0x1a
#define WIRE_COM_SET_OPTION          0x1b
#define WIRE_COM_STMT_FETCH          0x1c
#define WIRE_COM_RESET_CONNECTION    0x1f

/* Capability flags. */
#define WIRE_CAP_LONG_PASSWORD       (1u << 0)
#define WIRE_CAP_FOUND_ROWS          (1u << 1)
#define WIRE_CAP_LONG_FLAG           (1u << 2)
#define WIRE_CAP_CONNECT_WITH_DB     (1u << 3)
#define WIRE_CAP_NO_SCHEMA           (1u << 4)
#define WIRE_CAP_COMPRESS            (1u << 5)
#define WIRE_CAP_ODBC                (1u << 6)
#define WIRE_CAP_LOCAL_FILES         (1u << 7)
#define WIRE_CAP_IGNORE_SPACE        (1u << 8)
#define WIRE_CAP_PROTOCOL_41         (1u << 9)
#define WIRE_CAP_INTERACTIVE         (1u << 10)
#define WIRE_CAP_SSL                 (1u << 11)
#define WIRE_CAP_IGNORE_SIGPIPE      (1u << 12)
#define WIRE_CAP_TRANSACTIONS        (1u << 13)
#define WIRE_CAP_RESERVED            (1u << 14)
#define WIRE_CAP_SECURE_CONNECTION   (1u << 15)
#define WIRE_CAP_MULTI_STATEMENTS    (1u << 16)
#define WIRE_CAP_MULTI_RESULTS       (1u << 17)
#define WIRE_CAP_PS_MULTI_RESULTS    (1u << 18)
#define WIRE_CAP_PLUGIN_AUTH         (1u << 19)
#define WIRE_CAP_CONNECT_ATTRS       (1u << 20)
#define WIRE_CAP_PLUGIN_AUTH_LENENC  (1u << 21)
#define WIRE_CAP_CAN_HANDLE_EXPIRED  (1u << 22)
#define WIRE_CAP_SESSION_TRACK       (1u << 23)
#define WIRE_CAP_DEPRECATE_EOF       (1u << 24)

/* Server status flags (OK and EOF packets). */
#define WIRE_STATUS_IN_TRANS             0x0001
#define WIRE_STATUS_AUTOCOMMIT           0x0002
#define WIRE_STATUS_MORE_RESULTS_EXISTS  0x0008
#define WIRE_STATUS_NO_GOOD_INDEX_USED   0x0010
#define WIRE_STATUS_NO_INDEX_USED        0x0020
#define WIRE_STATUS_CURSOR_EXISTS        0x0040
#define WIRE_STATUS_LAST_ROW_SENT        0x0080
#define WIRE_STATUS_DB_DROPPED           0x0100
#define WIRE_STATUS_NO_BACKSLASH_ESCAPES 0x0200
#define WIRE_STATUS_METADATA_CHANGED     0x0400
#define WIRE_STATUS_QUERY_WAS_SLOW       0x0800
#define WIRE_STATUS_PS_OUT_PARAMS        0x1000
#define WIRE_STATUS_IN_TRANS_READONLY    0x2000
#define WIRE_STATUS_SESSION_STATE_CHANGED 0x4000

/* Reply packet headers (first payload byte). */
#define WIRE_HDR_OK          0x00
#define WIRE_HDR_LOCAL_INFILE 0xfb
#define WIRE_HDR_EOF         0xfe
#define WIRE_HDR_ERR         0xff

/* Character set: utf8mb4_general_ci, what we announce in the greeting. */
#define WIRE_CHARSET_UTF8MB4_GENERAL_CI 45

/* Error numbers we send (MySQL's values). */
#define WIRE_ER_CON_COUNT            1040
#define WIRE_ER_OUT_OF_RESOURCES     1041
#define WIRE_ER_HANDSHAKE            1043
#define WIRE_ER_DBACCESS_DENIED      1044
#define WIRE_ER_ACCESS_DENIED        1045
#define WIRE_ER_NO_DB                1046
#define WIRE_ER_UNKNOWN_COM          1047
#define WIRE_ER_BAD_DB               1049
#define WIRE_ER_NET_PACKET_TOO_LARGE 1153
#define WIRE_ER_NET_READ_ERROR       1158
#define WIRE_ER_NET_ERROR_ON_WRITE   1160
#define WIRE_ER_PARSE                1064
#define WIRE_ER_EMPTY_QUERY          1065
#define WIRE_ER_NOT_SUPPORTED_YET    1235
#define WIRE_ER_SERVER_SHUTDOWN      1053
#define WIRE_ER_LOCK_WAIT_TIMEOUT    1205
#define WIRE_ER_CANT_DO_THIS_IN_TRANS 1179
#define WIRE_ER_OPTION_PREVENTS      1290
#define WIRE_ER_SPECIFIC_ACCESS_DENIED 1227
#define WIRE_ER_UNKNOWN_STMT_HANDLER 1243
#define WIRE_ER_WRONG_ARGUMENTS      1210
#define WIRE_ER_CONNECT_TO_BACKEND   2003 /* CR_CONN_HOST_ERROR, as clients know it */
#define WIRE_ER_BACKEND_GONE         2013 /* CR_SERVER_LOST */
/* shardwire's own rejects use ER_NOT_SUPPORTED_YET / ER_PARSE / 1105 (unknown error)
 * with a message naming the rule; see docs/query-rules.md. */
#define WIRE_ER_UNKNOWN              1105

#endif
