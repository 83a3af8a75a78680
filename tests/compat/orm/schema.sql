-- tests/compat/orm/schema.sql - the ORM suite's tables, created directly on
-- every shard by tests/e2e/test_orm.py (DDL does not go through the router).
-- Both carry the shard key; the primary key is (userid, id) so that an ORM
-- can declare a composite identity (plain mode), and id alone is unique on a
-- shard (AUTO_INCREMENT), so an ORM may also treat id as the identity
-- (scoped mode). App-assigned ids (ORMs that cannot generate part of a
-- composite identity) are unique too: see README.md.
CREATE TABLE orm_notes (
  id BIGINT NOT NULL AUTO_INCREMENT,
  userid BIGINT NOT NULL,
  title VARCHAR(100) NOT NULL,
  body VARCHAR(500) NULL,
  views INT NOT NULL DEFAULT 0,
  PRIMARY KEY (userid, id),
  UNIQUE KEY orm_notes_id (id),
  UNIQUE KEY orm_notes_title (userid, title)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
CREATE TABLE orm_comments (
  id BIGINT NOT NULL AUTO_INCREMENT,
  userid BIGINT NOT NULL,
  note_id BIGINT NOT NULL,
  text VARCHAR(200) NOT NULL,
  PRIMARY KEY (userid, id),
  UNIQUE KEY orm_comments_id (id),
  KEY orm_comments_note (userid, note_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
