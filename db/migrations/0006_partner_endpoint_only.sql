ALTER TABLE `partners` DROP COLUMN `url`;--> statement-breakpoint
ALTER TABLE `partners` DROP COLUMN `secret_enc`;