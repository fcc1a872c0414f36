#!/bin/sh
# Runs once, on the first start of an empty MySQL volume: one database and one user per
# service, each user limited to its own database.
set -eu
mysql -uroot -p"${MYSQL_ROOT_PASSWORD}" <<SQL
create database if not exists hangout character set utf8mb4 collate utf8mb4_bin;
create database if not exists file character set utf8mb4 collate utf8mb4_bin;
create user if not exists 'hangout'@'%' identified by '${HANGOUT_DB_PASSWORD}';
create user if not exists 'file'@'%' identified by '${FILE_DB_PASSWORD}';
grant all privileges on hangout.* to 'hangout'@'%';
grant all privileges on file.* to 'file'@'%';
SQL
